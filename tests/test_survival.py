"""Median updates to solve with the unsolved runs censored (Kaplan-Meier), against cases
computed by hand."""
from seqbench.survival import median_updates_to_solve, updates_to_solve_words


def test_every_run_solved_gives_the_plain_median():
    assert median_updates_to_solve([(2600, True), (7600, True), (4800, True)]) == (4800.0, 7600)


def test_an_unsolved_run_is_censored_not_dropped():
    # By hand: S(2600) = 2/3, S(4000) = 1/3 (the run censored at 20,000 stays at risk): median 4,000.
    # Dropping the unsolved run would give (2600 + 4000) / 2 = 3,300.
    assert median_updates_to_solve([(2600, True), (4000, True), (20000, False)]) == (4000.0, 20000)


def test_fewer_than_half_solved_puts_the_median_above_the_cap():
    # S(2600) = 2/3 and no later event: the curve never reaches 1/2.
    assert median_updates_to_solve([(2600, True), (20000, False), (20000, False)]) == (None, 20000)
    assert updates_to_solve_words([(2600, True), (20000, False), (20000, False)]) == "> 20,000 (1 of 3 solved)"
    assert updates_to_solve_words([(20000, False)] * 3) == "> 20,000 (0 of 3 solved)"
    assert updates_to_solve_words([(2600, True), (7600, True), (4800, True)]) == "4,800 (3 of 3 solved)"
