"""A stop (Ctrl-C, SIGTERM) that lands while zarr's I/O loop has reads in flight ends in one line:
the reads it abandoned are not logged when that loop closes at exit."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import argparse, asyncio, atexit, sys, threading
    from gahb_bench import cli

    def stopped(args):
        # an I/O loop in a thread with a read in flight, closed at exit as zarr's is
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
        raise {error}

    def parser():
        p = argparse.ArgumentParser()
        p.set_defaults(func=stopped)
        return p

    cli.build_parser = parser
    sys.exit(cli.main([]))
''')


@pytest.mark.parametrize("error, code, line", [("KeyboardInterrupt", 130, "interrupted"),
                                               ("cli.Terminated", 143, "terminated")])
def test_a_stop_during_zarr_reads_ends_in_one_line(error, code, line):
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(error=error)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == code
    assert done.stderr == f"gahb: {line}; rerun the same command to resume\n"
