"""`cinerec bench wrk` reads wrk's own report: throughput, percentiles in any unit, errors."""

from cinerec.ops.bench import _lua, parse_wrk

REPORT = """Running 10s test @ http://127.0.0.1:8000
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.52ms    4.39ms  60.14ms   92.93%
    Req/Sec     1.93k   297.22     2.58k    71.00%
  Latency Distribution
     50%  812.00us
     75%    2.23ms
     90%    4.00ms
     99%    1.20s
  38389 requests in 10.01s, 30.65MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 12
Requests/sec:   3834.03
Transfer/sec:      3.06MB
"""


def test_parse_wrk_report():
    assert parse_wrk(REPORT) == {"requests_per_s": 3834.03, "requests": 38389, "p50_ms": 0.81, "p75_ms": 2.23,
                                 "p90_ms": 4.0, "p99_ms": 1200.0, "errors": 17}


def test_the_script_cycles_over_every_path():
    script = _lua(["/films/1", "/films?q=toy%20s"])
    assert '"/films/1"' in script and '"/films?q=toy%20s"' in script and "% #paths" in script
