"""SIGKILL a child that logs through prov4ml.log_metric at random moments; recover; compare point for point.

Each thread of the child stores, after every log_metric that returned, how many points it has logged into a
mapped counter file. python findings/_kill_harness.py [trials] [threads] [pure]
"""
import glob, mmap, os, random, shutil, signal, struct, subprocess, sys, tempfile, time

CHILD = r"""
import mmap, os, struct, sys, threading, torch, prov4ml
fd = os.open(sys.argv[1], os.O_RDWR); mm = mmap.mmap(fd, 4096)
nthreads = int(sys.argv[3])
prov4ml.start_run("www.example.org", "exp", sys.argv[2], capture=False, save_after_n_logs=int(sys.argv[4]))
struct.pack_into("<q", mm, 4088, 1)
def value(k, i):
    return float(i) + k / 8
def work(k):
    t = torch.tensor(0.0)
    i = 0
    while True:
        key = f"t{k}s{i % 5}" if i < 50 or i % 1000 else f"t{k}new{i}"   # new series now and then
        if i % 3 == 1:
            prov4ml.log_metric(key, torch.tensor(value(k, i), dtype=torch.float64), "training", i)
        else:
            prov4ml.log_metric(key, value(k, i), "training", i)
        i += 1
        struct.pack_into("<q", mm, 8 * k, i)
ts = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(1, nthreads)]
[t.start() for t in ts]
work(0)
"""

def key_of(k, i):
    return f"t{k}s{i % 5}" if i < 50 or i % 1000 else f"t{k}new{i}"

def trial(delay, nthreads, pure, save_after):
    tmp = tempfile.mkdtemp(prefix="p4kill_")
    counter = os.path.join(tmp, "counter")
    with open(counter, "wb") as fh:
        fh.write(b"\0" * 4096)
    env = dict(os.environ, PYTHONPATH="/work/wt/attack", PROV4ML_PURE_PYTHON="1" if pure else "0")
    p = subprocess.Popen([sys.executable, "-c", CHILD, counter, os.path.join(tmp, "prov"), str(nthreads), str(save_after)],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp)
    deadline = time.monotonic() + 120
    while True:
        with open(counter, "rb") as fh:
            if struct.unpack_from("<q", fh.read(4096), 4088)[0]:
                break
        if p.poll() is not None or time.monotonic() > deadline:
            print("child did not start", p.stderr.read()[-2000:]); return False
        time.sleep(0.005)
    time.sleep(delay)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    with open(counter, "rb") as fh:
        told = struct.unpack_from(f"<{nthreads}q", fh.read(4096))
    run_dir = glob.glob(os.path.join(tmp, "prov", "exp*", "run_*"))[0]
    r = subprocess.run([sys.executable, "-m", "prov4ml", "recover", run_dir], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        print("recover failed", r.returncode, r.stdout[-500:], r.stderr[-1500:]); return False
    on_disk = {}
    for path in glob.glob(os.path.join(run_dir, "metrics", "*.csv")):
        lines = open(path).read().split("\n")
        assert lines[-1] == "", ("torn", path)
        on_disk[os.path.basename(path)[: -len("_training_rank0.csv")]] = [
            (int(a), float(b)) for a, b, _ in (l.split(",") for l in lines[1:-1])]
    ok = True
    for k in range(nthreads):
        expect = {}
        for i in range(told[k] + 1):  # the point in flight at the kill may be there too
            expect.setdefault(key_of(k, i), []).append((i, float(i) + k / 8))
        for key, pts in expect.items():
            got = on_disk.get(key, [])
            want = pts if key != key_of(k, told[k]) else pts[:-1]
            if got[: len(want)] != want or len(got) > len(pts):
                ok = False
                missing = sorted(set(want) - set(got))
                print(f"LOSS thread {k} series {key}: told {told[k]}, want {len(want)} got {len(got)}; missing {missing[:5]} extra {sorted(set(got)-set(pts))[:5]}")
                break
    segs = len(glob.glob(os.path.join(run_dir, ".prov4ml", "rank0", "seg.*")))
    print(f"delay {delay:.3f} told {told} segments {segs} {'OK' if ok else 'BAD'}")
    if ok:
        shutil.rmtree(tmp)
    else:
        print("kept", tmp)
    return ok

if __name__ == "__main__":
    trials, nthreads, pure = int(sys.argv[1]), int(sys.argv[2]), len(sys.argv) > 3 and sys.argv[3] == "pure"
    random.seed(int(time.time()))
    bad = sum(not trial(random.choice([0.0, 0.001, 0.02, 0.1, 0.3, 0.7, 1.5]) + random.random() * 0.05, nthreads, pure,
                        random.choice([1, 7, 1000])) for _ in range(trials))
    print("bad trials", bad)
