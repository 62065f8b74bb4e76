#!/usr/bin/python3
"""fsync_probe.py DIR SECONDS: what one durable append costs on DIR's disk, the floor under every latency figure
of the bench. Appends a 512-byte record to a file in DIR and fdatasyncs it (what Redis does with `appendfsync
always`, once per turn of its loop), one after the other, for SECONDS; prints one line:
fsyncs=N p50_ms=.. p99_ms=.. p999_ms=.. max_ms=..
A routed message waits for at least two such syncs in series (its ingest.lua call, then its assign.lua call),
so p99_ms here bounds from below what the latency run's p99_ms can be (docs/benchmarks.md, figure 2b)."""
import os, sys, time

d, seconds = sys.argv[1], float(sys.argv[2])
path = os.path.join(d, "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
record, times = b"x" * 511 + b"\n", []
end = time.monotonic() + seconds
while time.monotonic() < end:
    t = time.monotonic_ns()
    os.write(fd, record)
    os.fdatasync(fd)
    times.append(time.monotonic_ns() - t)
os.close(fd)
os.unlink(path)
times.sort()
q = lambda p: times[min(len(times) - 1, int(p * len(times)))] / 1e6
print(f"fsyncs={len(times)} p50_ms={q(0.5):.2f} p99_ms={q(0.99):.2f} p999_ms={q(0.999):.2f} max_ms={times[-1] / 1e6:.2f}")
