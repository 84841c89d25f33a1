"""migrate_tcg_trials.py: does a live migration under TCG corrupt guest
memory? Bare QEMU only (bench/bare_qemu.py): the test guest's memory
tester fills MIB MiB (xapid.memtest) and rewrites it at RATE MiB/s (0: an
idle guest); each trial checks it on the source, migrates to a second
QEMU over a socketpair and checks it on the destination.

  bench/migrate_tcg_trials.py [--trials N] [--mib 64] [--rate 0] [--cap NAME]...
      [--param NAME=VALUE]... [--accel tcg,thread=single] [--qemu BIN] [--extra ARG]...

Prints one line per trial and a summary (docs/migration.md has the runs)."""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bare_qemu  # noqa: E402


def trial(work, i, args):
    src = dst = None
    try:
        src = bare_qemu.BareQemu(work, f"src{i}", memtest=f"{args.mib},{args.rate}",
                                 accel=args.accel, qemu=args.qemu, extra=args.extra)
        src.serial.wait("XAPID-GUEST-MEMTEST ready", 180)
        time.sleep(args.settle)
        before = src.memcheck()
        dst = bare_qemu.BareQemu(work, f"dst{i}", memtest=f"{args.mib},{args.rate}", incoming=True,
                                 accel=args.accel, qemu=args.qemu, extra=args.extra)
        params = {}
        for p in args.param:
            k, v = p.split("=", 1)
            params[k] = int(v) if v.isdigit() else v
        caps = {c: True for c in args.cap}
        info, wall = bare_qemu.migrate(src, dst, live=not args.nonlive, capabilities=caps,
                                       parameters=params)
        if info["status"] != "completed":
            return {"trial": i, "status": info["status"], "error": info.get("error-desc")}
        src.stop()
        src = None
        ram = info.get("ram", {})
        try:
            after = dst.memcheck(timeout=args.check_timeout)
        except (TimeoutError, EOFError) as e:
            # No answer: the guest hung or died on the destination. What it
            # said last and where its vCPU is tell which.
            status = dst.qmp.cmd("query-status")["status"]
            regs = dst.qmp.cmd("human-monitor-command", **{"command-line": "info registers"})
            rip = next((w for w in regs.split() if w.startswith("RIP=")), "?")
            tail = dst.serial.text[-600:]
            with open(os.path.join(work, f"dst{i}-serial.txt"), "w") as f:
                f.write(dst.serial.text)
            return {"trial": i, "status": "completed", "before_ok": before[0], "after_ok": False,
                    "hung": True, "error": str(e), "vm_status": status, "rip": rip,
                    "serial_tail": tail, "downtime_ms": info.get("downtime"),
                    "total_ms": info.get("total-time"), "dirty_sync": ram.get("dirty-sync-count")}
        return {"trial": i, "status": "completed", "before_ok": before[0], "after_ok": after[0],
                "bad_pages": after[1], "pages": after[2], "sum_before": before[3],
                "sum_after": after[3], "downtime_ms": info.get("downtime"),
                "total_ms": info.get("total-time"), "wall_s": round(wall, 3),
                "dirty_sync": ram.get("dirty-sync-count"), "transferred": ram.get("transferred")}
    finally:
        for q in (src, dst):
            if q:
                q.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--settle", type=float, default=2)
    ap.add_argument("--cap", action="append", default=[])
    ap.add_argument("--param", action="append", default=[])
    ap.add_argument("--accel", default="tcg")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--extra", action="append", default=[])
    ap.add_argument("--nonlive", action="store_true")
    ap.add_argument("--check-timeout", type=float, default=60)
    args = ap.parse_args()
    work = bare_qemu.workdir("migrate-trials")
    print(f"work: {work}", flush=True)
    results = []
    for i in range(args.trials):
        r = trial(work, i, args)
        results.append(r)
        print(json.dumps(r), flush=True)
    done = [r for r in results if r["status"] == "completed"]
    bad = [r for r in done if not r["after_ok"]]
    hung = [r for r in bad if r.get("hung")]
    print(f"summary: {len(results)} trials, {len(done)} completed, {len(bad)} corrupted "
          f"({len(hung)} of them no answer on the destination) "
          f"(mib={args.mib} rate={args.rate} accel={args.accel} caps={args.cap} "
          f"params={args.param} load={os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
