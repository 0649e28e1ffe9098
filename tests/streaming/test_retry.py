"""Which failures the job waits out (infrastructure) and which it does not (data)."""

import threading

import pytest
from elasticsearch import exceptions as es_errors

from cinerec.streaming.retry import Unavailable, is_transient, retrying


def failing(times: int, error: Exception):
    calls = []

    def step():
        calls.append(1)
        if len(calls) <= times:
            raise error
        return len(calls)
    return step, calls


def test_a_transient_failure_is_retried_until_the_step_succeeds():
    step, calls = failing(3, Unavailable("Elasticsearch refused a write (503)"))
    assert retrying(step, what="write", stop=threading.Event(), first_delay_s=0.01) == 4 and len(calls) == 4


def test_a_data_error_is_raised_at_once():
    step, calls = failing(1, ValueError("a document Elasticsearch rejected"))
    with pytest.raises(ValueError):
        retrying(step, what="write", stop=threading.Event(), first_delay_s=0.01)
    assert len(calls) == 1


def test_a_stopping_job_gives_up_waiting():
    stop = threading.Event()
    stop.set()
    step, calls = failing(100, Unavailable("away"))
    with pytest.raises(Unavailable):
        retrying(step, what="write", stop=stop, first_delay_s=0.01)
    assert len(calls) == 1


def test_connection_problems_and_overload_are_transient_bad_requests_are_not():
    assert is_transient(es_errors.ConnectionError("refused"))
    assert not is_transient(ValueError("bad value"))
    assert not is_transient(OverflowError("int too large"))
