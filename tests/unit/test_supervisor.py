"""`make run`'s restart delays: back off while a service keeps failing, reset once it runs."""

from services.__main__ import STABLE_SECONDS, restart_delay


def test_delays_double_up_to_thirty_seconds_while_the_service_keeps_exiting():
    delays, previous = [], None
    for _ in range(7):
        previous = restart_delay(previous, ran_for=2.0)
        delays.append(previous)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_service_that_ran_for_a_while_is_restarted_after_one_second_again():
    assert restart_delay(30.0, ran_for=STABLE_SECONDS) == 1.0
    assert restart_delay(30.0, ran_for=STABLE_SECONDS - 1) == 30.0
    assert restart_delay(None, ran_for=float("inf")) == 1.0
