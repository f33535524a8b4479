#!/usr/bin/env python3
"""Benchmark: the atrest embedded AWS emulator vs moto_server, KMS Encrypt / Decrypt /
GenerateDataKey throughput and p50/p99 latency at concurrency 1 and 16.

Both servers run on free loopback ports on this machine, in the same run, and are driven by the
same client code:

* driver `boto3`: N Python threads, each with its own boto3 client (own session and connection
  pool), a fixed duration per cell; latency = wall time of one client call.
* driver `rust`: bench/emulator/loadgen (official aws-sdk-kms, N tokio tasks each with its own
  client), same duration and calls. Used because boto3 itself (pure Python, one GIL) costs more CPU
  per call than the atrest server does, so a boto3 driver measures boto3.
* driver `raw`: the same loadgen with `--client raw`: N tokio tasks, each with one HTTP/1.1
  keep-alive connection and one request in flight on it, every request signed afresh with
  aws-sigv4 (the SDK's signer) and its JSON answer checked. Used because aws-sdk-kms itself costs
  more CPU per call than the atrest server does, and client and server share the machine's cores.
* driver `raw-pinned` (not in the default set): `raw` with the client pinned to CPU 0 and the
  server process (all its threads) pinned to CPU 1 with taskset for the cell, the same for both
  servers; the server's affinity is restored afterwards. Shows each side on its own core.
* driver `raw-1core` (not in the default set): `raw` with client and server both pinned to CPU 1,
  the same for both servers: one core for everything, so a request and its answer never wait for
  an idle core to wake up.

Writes bench/emulator/results.json and prints a table. Run it with scripts/bench-emulator.
"""

import argparse
import configparser
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import boto3
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
OPS = ["Encrypt", "Decrypt", "GenerateDataKey"]
CTX = {"bench": "1"}
PLAINTEXT = bytes([7]) * 32


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    def __init__(self, name, url, access_key, secret_key, proc, log):
        self.name, self.url, self.access_key, self.secret_key = name, url, access_key, secret_key
        self.proc, self.log = proc, log
        self.key_id = None

    def client(self):
        return boto3.session.Session(
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        ).client(
            "kms",
            endpoint_url=self.url,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=4),
        )

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_atrest(binary, workdir):
    data = os.path.join(workdir, "atrest")
    os.makedirs(data)
    log = open(os.path.join(workdir, "atrest.log"), "wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [binary, "aws", "serve", "--data-dir", data, "--aws-listen", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env, text=True,
    )
    deadline = time.time() + 60
    info = None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"atrest aws serve exited ({proc.wait()}); see {log.name}")
        if line.strip().startswith("{"):
            info = json.loads(line)
            break
    creds = configparser.ConfigParser()
    creds.read(info.get("credentialsFile") or os.path.join(data, "aws-credentials"))
    return Target("atrest", info["url"].rstrip("/"), creds["customer"]["aws_access_key_id"],
                  creds["customer"]["aws_secret_access_key"], proc, log)


def start_moto(workdir):
    port = free_port()
    log = open(os.path.join(workdir, "moto.log"), "wb")
    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or shutil.which("moto_server")
    if not exe:
        raise SystemExit("moto_server not found (pip install 'moto[server]')")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=2).read()
            break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"moto_server did not start; see {log.name}")
            time.sleep(0.2)
    return Target("moto", url, "testing", "testing", proc, log)


def call(client, op, key_id, blob):
    if op == "Encrypt":
        client.encrypt(KeyId=key_id, Plaintext=PLAINTEXT, EncryptionContext=CTX)
    elif op == "Decrypt":
        client.decrypt(CiphertextBlob=blob, EncryptionContext=CTX)
    elif op == "GenerateDataKey":
        client.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=CTX)
    else:
        raise ValueError(op)


def percentile(sorted_vals, p):
    if not sorted_vals:
        return 0.0
    i = min(len(sorted_vals), max(1, int(-(-p * len(sorted_vals) // 1)))) - 1
    return sorted_vals[i]


def cell_boto3(target, op, concurrency, duration, warmup):
    setup = target.client()
    blob = setup.encrypt(KeyId=target.key_id, Plaintext=PLAINTEXT, EncryptionContext=CTX)["CiphertextBlob"]
    clients = [target.client() for _ in range(concurrency)]
    for c in clients:
        for _ in range(warmup):
            call(c, op, target.key_id, blob)
    barrier = threading.Barrier(concurrency + 1)
    results = [None] * concurrency
    state = {}

    def worker(i):
        c = clients[i]
        lat, errors = [], 0
        barrier.wait()
        deadline = state["deadline"]
        pc = time.perf_counter
        while pc() < deadline:
            t = pc()
            try:
                call(c, op, target.key_id, blob)
                lat.append(pc() - t)
            except Exception as e:  # noqa: BLE001 - counted, first one shown
                errors += 1
                if errors == 1:
                    print(f"  {target.name} {op}: {e}", file=sys.stderr)
        results[i] = (lat, errors)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    state["deadline"] = start + duration
    barrier.wait()
    for t in threads:
        t.join()
    secs = time.perf_counter() - start
    lat = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    return {
        "op": op, "concurrency": concurrency, "requests": len(lat), "errors": errors,
        "seconds": round(secs, 3), "throughput": round(len(lat) / secs, 1),
        "p50_ms": round(percentile(lat, 0.50) * 1e3, 3), "p99_ms": round(percentile(lat, 0.99) * 1e3, 3),
        "mean_ms": round(sum(lat) / max(1, len(lat)) * 1e3, 3),
    }


def pin(pid, cpus):
    """Set the CPU affinity of every thread of a process (like taskset -a). moto_server starts and
    ends a thread per request: a thread gone meanwhile is skipped, and new threads inherit the
    affinity of the thread that starts them."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except (ProcessLookupError, FileNotFoundError):
            pass


def cell_rust(loadgen, target, op, concurrency, duration, warmup, threads, client="sdk", prefix=()):
    out = subprocess.run(
        [*prefix, loadgen, "--client", client, "--endpoint", target.url, "--access-key", target.access_key, "--secret-key", target.secret_key,
         "--key-id", target.key_id, "--op", op, "--concurrency", str(concurrency), "--duration", str(duration),
         "--threads", str(threads), "--warmup", str(warmup)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
    )
    if out.returncode != 0:
        raise SystemExit(f"kms-loadgen failed: {out.stderr}")
    if out.stderr.strip():
        print("  " + out.stderr.strip(), file=sys.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def children_cpu_seconds():
    """utime+stime of this process's finished children (a kms-loadgen run, once waited for)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_seconds(pid):
    """utime+stime of a process, from /proc (Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import botocore
    try:
        import moto
        moto_version = moto.__version__
    except Exception:  # noqa: BLE001
        moto_version = None
    return {
        "cpus": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
        "python": platform.python_version(), "boto3": boto3.__version__, "botocore": botocore.__version__,
        "moto": moto_version,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atrest-bin", required=True)
    ap.add_argument("--loadgen", help="kms-loadgen binary (enables the rust driver)")
    ap.add_argument("--drivers", default="boto3,rust,raw")
    ap.add_argument("--targets", default="atrest,moto")
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--concurrency", default="1,16")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    ap.add_argument("--warmup", type=int, default=20, help="calls per client before timing")
    ap.add_argument("--loadgen-threads", type=int, default=1, help="tokio worker threads of kms-loadgen")
    ap.add_argument("--out", default=os.path.join(HERE, "results.json"))
    args = ap.parse_args()

    drivers = [d for d in args.drivers.split(",") if d]
    if not args.loadgen:
        drivers = [d for d in drivers if d not in ("rust", "raw", "raw-pinned", "raw-1core")]
    ops = args.ops.split(",")
    concs = [int(c) for c in args.concurrency.split(",")]
    work = tempfile.mkdtemp(prefix="atrest-bench-")
    targets = []
    try:
        for name in args.targets.split(","):
            t = start_atrest(args.atrest_bin, work) if name == "atrest" else start_moto(work)
            t.key_id = t.client().create_key(Description="bench")["KeyMetadata"]["KeyId"]
            targets.append(t)
            print(f"{name}: {t.url} key {t.key_id}", file=sys.stderr)

        rows = []
        for driver in drivers:
            for op in ops:
                for conc in concs:
                    for t in targets:
                        cpu0 = cpu_seconds(t.proc.pid)
                        if driver == "boto3":
                            r = cell_boto3(t, op, conc, args.duration, args.warmup)
                        else:
                            client_cpu0 = children_cpu_seconds()
                            client = "sdk" if driver == "rust" else "raw"
                            client_cpu = {"raw-pinned": "0", "raw-1core": "1"}.get(driver)
                            if client_cpu:
                                pin(t.proc.pid, {1})
                            try:
                                r = cell_rust(args.loadgen, t, op, conc, args.duration, args.warmup,
                                              args.loadgen_threads, client,
                                              ("taskset", "-c", client_cpu) if client_cpu else ())
                            finally:
                                if client_cpu:
                                    pin(t.proc.pid, range(os.cpu_count()))
                            if r["requests"]:
                                # Whole client process, warm-up and setup calls included.
                                r["client_cpu_us_per_req"] = round(
                                    (children_cpu_seconds() - client_cpu0) / r["requests"] * 1e6, 1)
                        cpu1 = cpu_seconds(t.proc.pid)
                        r.update({"driver": driver, "target": t.name})
                        if cpu0 is not None and cpu1 is not None and r["requests"]:
                            r["server_cpu_s"] = round(cpu1 - cpu0, 2)
                            r["server_cpu_us_per_req"] = round((cpu1 - cpu0) / r["requests"] * 1e6, 1)
                        rows.append(r)
                        print(f"  {driver:10} {t.name:6} {op:15} c={conc:<2} {r['throughput']:>9.1f}/s "
                              f"p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms errors {r['errors']}",
                              file=sys.stderr)
    finally:
        for t in targets:
            t.stop()
        shutil.rmtree(work, ignore_errors=True)

    def get(driver, target, op, conc):
        for r in rows:
            if (r["driver"], r["target"], r["op"], r["concurrency"]) == (driver, target, op, conc):
                return r
        return None

    ratios = []
    lines = [
        "| driver | operation | conc. | atrest req/s | atrest p50 / p99 ms | moto req/s | moto p50 / p99 ms "
        "| throughput atrest/moto | server CPU µs/req atrest / moto |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for driver in drivers:
        for op in ops:
            for conc in concs:
                a, m = get(driver, "atrest", op, conc), get(driver, "moto", op, conc)
                ratio = round(a["throughput"] / m["throughput"], 1) if a and m and m["throughput"] else None
                cpu_ratio = None
                if a and m and a.get("server_cpu_us_per_req") and m.get("server_cpu_us_per_req"):
                    cpu_ratio = round(m["server_cpu_us_per_req"] / a["server_cpu_us_per_req"], 1)
                ratios.append({"driver": driver, "op": op, "concurrency": conc, "throughput_ratio": ratio,
                               "server_cpu_per_request_ratio_moto_over_atrest": cpu_ratio})
                cpu = lambda r: f"{r['server_cpu_us_per_req']:,.0f}" if r and r.get("server_cpu_us_per_req") else "-"
                fmt = lambda r: (f"{r['throughput']:,.0f}", f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}") if r else ("-", "-")
                (at, al), (mt, ml) = fmt(a), fmt(m)
                lines.append(f"| {driver} | {op} | {conc} | {at} | {al} | {mt} | {ml} | "
                             f"{'-' if ratio is None else f'{ratio}×'} | {cpu(a)} / {cpu(m)} |")
    table = "\n".join(lines)
    print(table)
    result = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "method": {"duration_s": args.duration, "warmup_calls_per_client": args.warmup, "ops": ops,
                   "concurrency": concs, "drivers": drivers, "loadgen_threads": args.loadgen_threads,
                   "plaintext_bytes": len(PLAINTEXT), "encryption_context": CTX},
        "machine": machine(), "results": rows, "ratios": ratios, "table_markdown": table,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
