"""Event and task benchmarks (issue 3), called by bench/run.py:

- event latency: a writer sets a VM's name_label; N watchers (1, 10, 100),
  each blocked in event.from on its own connection, note when their reply
  arrives; p50/p99 of (watcher reply - writer reply).
- Async overhead: Async.network.create followed by waiting for its task
  (event.from on the task) against a plain network.create, as a ratio.
- event.from timeout: how long a call with nothing to report takes against
  its timeout plus one trivial call's round trip (the peer), as a ratio
  (the client tests only check that it is not early).
"""
import statistics
import threading
import time
import xmlrpc.client


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def event_latency(url, session, watchers, rounds):
    api = xmlrpc.client.ServerProxy(url)
    vm = api.VM.get_all(session)["Value"][0]
    start_token = getattr(api.event, "from")(session, ["vm"], "", 0.0)["Value"]["token"]
    arrivals = []
    lock = threading.Lock()
    ready = threading.Barrier(watchers + 1)
    stop = threading.Event()

    def watcher():
        proxy = xmlrpc.client.ServerProxy(url)
        token = start_token
        ready.wait()
        while not stop.is_set():
            batch = getattr(proxy.event, "from")(session, ["vm"], token, 5.0)["Value"]
            now = time.perf_counter()
            token = batch["token"]
            if batch["events"]:
                with lock:
                    arrivals.append(now)

    threads = [threading.Thread(target=watcher, daemon=True) for _ in range(watchers)]
    for t in threads:
        t.start()
    ready.wait()
    time.sleep(0.3)
    latencies = []
    for i in range(rounds):
        with lock:
            arrivals.clear()
        api.VM.set_name_label(session, vm, f"bench-{i}")
        written = time.perf_counter()
        deadline = written + 5
        while time.perf_counter() < deadline:
            with lock:
                if len(arrivals) >= watchers:
                    break
            time.sleep(0.0005)
        with lock:
            latencies.extend(a - written for a in arrivals)
        time.sleep(0.05)
    stop.set()
    api.VM.set_name_label(session, vm, "bench-end")
    return percentile(latencies, 50), percentile(latencies, 99), len(latencies)


def async_overhead(url, session, rounds):
    api = xmlrpc.client.ServerProxy(url)
    started = time.perf_counter()
    for i in range(rounds):
        api.network.create(session, {"name_label": f"sync-{i}"})
    sync = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    for i in range(rounds):
        task = api.Async.network.create(session, {"name_label": f"async-{i}"})["Value"]
        token = ""
        while True:
            batch = getattr(api.event, "from")(session, [f"task/{task}"], token, 5.0)["Value"]
            token = batch["token"]
            if any(e["snapshot"]["status"] != "pending" for e in batch["events"]
                   if e["operation"] != "del"):
                break
    asynchronous = (time.perf_counter() - started) / rounds
    return sync, asynchronous


def event_latency_c(build, url, session, watchers, rounds):
    """The same measurement from bench/event_watchers (C): the client is
    not the bottleneck there."""
    import subprocess
    import urllib.parse
    api = xmlrpc.client.ServerProxy(url)
    vm = api.VM.get_all(session)["Value"][0]
    parsed = urllib.parse.urlparse(url)
    out = subprocess.run([f"{build}/event_watchers", parsed.hostname, str(parsed.port), session,
                          vm, str(watchers), str(rounds)], check=True, capture_output=True,
                         text=True, timeout=300).stdout.split()
    return float(out[0]) / 1000, float(out[1]) / 1000, int(out[2])


def timeout_precision(url, session, timeout, rounds):
    api = xmlrpc.client.ServerProxy(url)
    token = getattr(api.event, "from")(session, ["vm"], "", 0.0)["Value"]["token"]
    waits, trips = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        assert getattr(api.event, "from")(session, ["vm"], token, timeout)["Value"]["events"] == []
        waits.append(time.perf_counter() - started)
        started = time.perf_counter()
        api.session.get_uuid(session, session)
        trips.append(time.perf_counter() - started)
    return statistics.median(waits), statistics.median(trips)


def run(url, session, print_line, build):
    for n in (1, 10, 100):
        p50, p99, samples = event_latency_c(build, url, session, n, 50)
        print_line(f"event latency, {n} watchers: p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms "
                   f"({samples} samples){' (goal p99 < 5 ms)' if n == 10 else ''}")
        if n <= 10:
            p50, p99, samples = event_latency(url, session, n, 30)
            print_line(f"  the same with Python watchers: p50 {p50 * 1000:.2f} ms, "
                       f"p99 {p99 * 1000:.2f} ms")
    sync, asynchronous = async_overhead(url, session, 200)
    print_line(f"network.create {sync * 1000:.2f} ms; Async.network.create until its task is "
               f"done {asynchronous * 1000:.2f} ms; ratio {asynchronous / sync:.2f}")
    for timeout in (0.2, 1.0):
        wait, trip = timeout_precision(url, session, timeout, 5)
        print_line(f"event.from with timeout {timeout} s and nothing to report: {wait * 1000:.1f} ms "
                   f"against timeout + a round trip {(timeout + trip) * 1000:.1f} ms; "
                   f"ratio {wait / (timeout + trip):.3f}")
