"""Reference denoisers fitted in closed form on a training set (the empirical optimum, …)."""
