"""A stop (Ctrl-C, SIGTERM, a Dask worker closed mid-cell) that lands while zarr's I/O loop has
reads in flight ends in one line: the reads it abandoned are not logged when that loop closes at
exit."""

import subprocess
import sys
import textwrap

import pytest

# an I/O loop in a thread with a read in flight, closed at exit as zarr's is
ABANDONED_READ = textwrap.dedent('''
    import asyncio, atexit, threading

    def abandon_a_read():
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()

        async def read():
            await asyncio.sleep(3600)
        asyncio.run_coroutine_threadsafe(read(), loop)

        def close():
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
        atexit.register(close)
''')

CLI = ABANDONED_READ + textwrap.dedent('''
    import argparse, sys
    from gahb_bench import cli

    def stopped(args):
        abandon_a_read()
        raise {error}

    def parser():
        p = argparse.ArgumentParser()
        p.set_defaults(func=stopped)
        return p

    cli.build_parser = parser
    sys.exit(cli.main([]))
''')

WORKER = ABANDONED_READ + textwrap.dedent('''
    from gahb_bench.executors import _ignore_interrupt_plugin

    abandon_a_read()
    {teardown}
''')


def _run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("error, code, line", [("KeyboardInterrupt", 130, "interrupted"),
                                               ("cli.Terminated", 143, "terminated")])
def test_a_stop_during_zarr_reads_ends_in_one_line(error, code, line):
    done = _run(CLI.format(error=error))
    assert done.returncode == code
    assert done.stderr == f"gahb: {line}; rerun the same command to resume\n"


def test_a_dask_worker_closed_mid_read_ends_silently():
    # the control: without the plugin's teardown the abandoned read is logged at exit
    assert "Task was destroyed but it is pending!" in _run(WORKER.format(teardown="")).stderr
    done = _run(WORKER.format(teardown="_ignore_interrupt_plugin().teardown(worker=None)"))
    assert done.returncode == 0 and done.stderr == ""
