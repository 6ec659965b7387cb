#!/usr/bin/python3
"""/metrics against a real corrald: promtool and prometheus_client accept it
under load and after a reload; per-type series add up; a listener that cannot
bind stops corrald at start.
Usage: CORRALD=... metrics.py   (meson runs it with the build tree's daemon)."""
import json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time

CORRALD = os.environ.get('CORRALD', 'build/daemon/corrald')
SKIP = 77

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print('python3-prometheus-client not installed: skipped')
    sys.exit(SKIP)
PROMTOOL = shutil.which('promtool')
if not PROMTOOL:
    print('promtool (Debian package prometheus) not installed: skipped')
    sys.exit(SKIP)

RUN = tempfile.mkdtemp(prefix='corral-metrics-')
DEADLINE = 60  # seconds: a safety bound, never a synchronisation


def fail(msg):
    print('FAIL: ' + msg)
    sys.exit(1)


class Daemon:
    def __init__(self, cfg, name='d'):
        self.dir = os.path.join(RUN, name)
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, 'ctl.sock')
        self.cfgpath = os.path.join(self.dir, 'corral.json')
        self.write(cfg)
        self.err = open(os.path.join(self.dir, 'stderr'), 'w+')
        self.p = subprocess.Popen([CORRALD, '--config', self.cfgpath, '--socket', self.sock],
                                  stdout=subprocess.DEVNULL, stderr=self.err)
        end = time.monotonic() + DEADLINE
        while True:
            if self.p.poll() is not None:
                fail('corrald exited with %d: %s' % (self.p.returncode, self.stderr()))
            try:
                self.conn = socket.socket(socket.AF_UNIX)
                self.conn.connect(self.sock)
                break
            except OSError:
                self.conn.close()
                if time.monotonic() > end:
                    fail('corrald did not listen')
                # Polls a socket that appears once; bounded by DEADLINE.
                time.sleep(0.02)
        self.rf = self.conn.makefile('rb')
        self.next_id = 1

    def write(self, cfg):
        with open(self.cfgpath + '.tmp', 'w') as f:
            json.dump(cfg, f)
        os.rename(self.cfgpath + '.tmp', self.cfgpath)

    def stderr(self):
        self.err.flush()
        self.err.seek(0)
        return self.err.read()

    def req(self, cmd, **args):
        args.update(id=self.next_id, cmd=cmd)
        self.next_id += 1
        self.conn.sendall(json.dumps(args).encode() + b'\n')
        r = json.loads(self.rf.readline())
        if not r.get('ok'):
            fail('%s: %r' % (cmd, r))
        return r

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.p.kill()
            fail('corrald did not exit on SIGTERM')
        self.conn.close()
        if self.p.returncode != 0 or 'Sanitizer' in self.stderr():
            fail('corrald exited with %d: %s' % (self.p.returncode, self.stderr()[-3000:]))


def scrape(path):
    # The control socket accepts before the metrics listener is bound (or a
    # stale file replaced): wait for it, bounded.
    end = time.monotonic() + DEADLINE
    while True:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(DEADLINE)
        try:
            s.connect(path)
            break
        except (ConnectionRefusedError, FileNotFoundError):
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.02)
    s.sendall(b'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n')
    data = b''
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b'\r\n\r\n')
    if not head.startswith(b'HTTP/1.0 200'):
        fail('scrape: %r' % head)
    if b'text/plain; version=0.0.4' not in head:
        fail('content type: %r' % head)
    return body.decode()


def check(text, label):
    """promtool and the Python parser accept text; returns {(name, labels): value}."""
    r = subprocess.run([PROMTOOL, 'check', 'metrics'], input=text.encode(),
                       capture_output=True, timeout=DEADLINE)
    if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
        fail('%s: promtool check metrics: rc %d\n%s%s' % (label, r.returncode,
                                                          r.stdout.decode(), r.stderr.decode()))
    samples, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in samples:
                fail('%s: duplicate series %r' % (label, key))
            samples[key] = s.value
    want = {'corral_build_info': 'gauge', 'corral_workers': 'gauge',
            'corral_queued_calls': 'gauge', 'corral_backoff_active': 'gauge',
            'corral_workers_spawned': 'counter', 'corral_workers_crashed': 'counter',
            'corral_workers_exited': 'counter', 'corral_worker_restarts': 'counter',
            'corral_calls': 'counter', 'corral_call_duration_seconds': 'histogram',
            'process_start_time_seconds': 'gauge', 'process_cpu_seconds': 'counter',
            'process_resident_memory_bytes': 'gauge', 'process_open_fds': 'gauge',
            'process_virtual_memory_bytes': 'gauge', 'process_max_fds': 'gauge'}
    for name, typ in want.items():
        if types.get(name) != typ:
            fail('%s: family %s is %r, want %s' % (label, name, types.get(name), typ))
    # Histograms: cumulative buckets, +Inf equals _count, per type.
    tnames = {dict(k[1]).get('type') for k in samples if k[0] == 'corral_call_duration_seconds_count'}
    for t in tnames:
        buckets = sorted(((float(dict(l)['le']), v) for (n, l) in samples
                          if n == 'corral_call_duration_seconds_bucket' and dict(l)['type'] == t
                          for v in [samples[(n, l)]]))
        vals = [v for _, v in buckets]
        if vals != sorted(vals):
            fail('%s: buckets of %s not cumulative: %r' % (label, t, buckets))
        count = samples[('corral_call_duration_seconds_count', (('type', t),))]
        if buckets[-1][0] != float('inf') or buckets[-1][1] != count:
            fail('%s: +Inf bucket of %s != count %r' % (label, t, count))
    return samples


def val(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def load(d, n_threads, n_calls, errors):
    """n_threads connections, each pipelining n_calls echo calls.  Replies are
    read while requests are sent: corrald stops reading a connection whose
    unsent replies pass its limit, so a client that sends everything before
    reading can block both sides (as libcorral, it must keep reading)."""
    def read_replies(f):
        try:
            for i in range(n_calls):
                r = json.loads(f.readline())
                if not r.get('ok'):
                    errors.append(r)
        except Exception as e:  # reported by the main thread
            errors.append(repr(e))

    def run():
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(DEADLINE)
            s.connect(d.sock)
            f = s.makefile('rb')
            reader = threading.Thread(target=read_replies, args=(f,))
            reader.start()
            for i in range(n_calls):
                s.sendall(json.dumps({'id': i, 'cmd': 'call', 'type': 'echo',
                                      'payload': 'x' * 100}).encode() + b'\n')
            reader.join()
            s.close()
        except Exception as e:  # reported by the main thread
            errors.append(repr(e))
    ts = [threading.Thread(target=run) for _ in range(n_threads)]
    for t in ts:
        t.start()
    return ts


def check_dashboard(samples):
    """contrib/grafana-corral.json: its PromQL parses (promtool check rules) and
    names only series /metrics serves."""
    path = os.environ.get('CORRAL_DASHBOARD')
    if not path:
        return
    import re
    dash = json.load(open(path))
    exprs = [t['expr'] for p in dash['panels'] for t in p.get('targets', [])]
    if len(exprs) < 10:
        fail('dashboard: only %d queries' % len(exprs))
    served = {n for n, _ in samples}
    rules = os.path.join(RUN, 'dashboard-rules.yml')
    with open(rules, 'w') as f:
        f.write('groups:\n- name: dashboard\n  rules:\n')
        for i, e in enumerate(exprs):
            e = e.replace('$__rate_interval', '5m')
            e = re.sub(r'\$(job|instance|type)\b', '.*', e)
            f.write('  - record: dashboard:q%d\n    expr: %s\n' % (i, json.dumps(e)))
            for name in re.findall(r'\b((?:corral|process)_[a-z_]+)\b', e):
                if name not in served:
                    fail('dashboard: %s is not served by /metrics (%s)' % (name, e))
    r = subprocess.run([PROMTOOL, 'check', 'rules', rules], capture_output=True, timeout=DEADLINE)
    if r.returncode != 0:
        fail('dashboard PromQL: %s%s' % (r.stdout.decode(), r.stderr.decode()))


def main():
    msock = os.path.join(RUN, 'metrics.sock')
    cfg = {'metrics': {'listen': msock},
           'types': {'echo': {'builtin': 'echo', 'pool': {'min': 1, 'max': 2, 'queue': 100000}},
                     'sha256': {'builtin': 'sha256'},
                     # exits before its handshake: crashes, restarts, backoff
                     'broken': {'exec': ['/bin/true'], 'pool': {'min': 1},
                                'restart': {'burst': 1, 'backoff_ms': [50, 200]}}}}
    d = Daemon(cfg)
    s0 = check(scrape(msock), 'idle')
    if val(s0, 'corral_build_info', version=os.environ.get('CORRAL_VERSION', '0.1.0')) != 1:
        fail('corral_build_info: %r' % [k for k in s0 if k[0] == 'corral_build_info'])
    if not 1e9 < val(s0, 'process_start_time_seconds') <= time.time() + 1:
        fail('process_start_time_seconds %r' % val(s0, 'process_start_time_seconds'))

    errors = []
    threads, per = 4, 1000
    ts = load(d, threads, per, errors)
    scrapes = 0
    while any(t.is_alive() for t in ts):
        check(scrape(msock), 'under load')
        scrapes += 1
    for t in ts:
        t.join()
    if errors:
        fail('calls failed: %r' % errors[:3])
    d.req('call', type='sha256', payload='abc')
    s1 = check(scrape(msock), 'after load')
    ok = val(s1, 'corral_calls_total', type='echo', outcome='ok')
    if ok != threads * per:
        fail('corral_calls_total{echo,ok} = %r, want %d' % (ok, threads * per))
    if val(s1, 'corral_call_duration_seconds_count', type='echo') != threads * per:
        fail('histogram count of echo != calls')
    if val(s1, 'corral_calls_total', type='sha256', outcome='ok') != 1:
        fail('sha256 calls not counted per type')
    if val(s1, 'corral_workers_spawned_total', type='echo') < 1:
        fail('echo spawns not counted')
    live = sum(v for (n, l), v in s1.items() if n == 'corral_workers' and dict(l)['type'] == 'echo')
    if not 1 <= live <= 2:
        fail('corral_workers{echo} sums to %r' % live)
    # The broken type crash-loops: crashes counted, restarts, backoff engaged at some point.
    end = time.monotonic() + DEADLINE
    while True:
        s = check(scrape(msock), 'crash loop')
        if (val(s, 'corral_workers_crashed_total', type='broken') >= 3 and
                val(s, 'corral_worker_restarts_total', type='broken') >= 1):
            break
        if time.monotonic() > end:
            fail('broken type: crashes %r restarts %r' % (
                val(s, 'corral_workers_crashed_total', type='broken'),
                val(s, 'corral_worker_restarts_total', type='broken')))
        time.sleep(0.05)  # waiting on the daemon's own backoff timers; bounded above

    # Reload: echo changes (a new generation while the old drains), sha256 goes, echo2 comes.
    cfg['types']['echo']['pool']['max'] = 3
    del cfg['types']['sha256']
    cfg['types']['echo2'] = {'builtin': 'echo'}
    d.write(cfg)
    ts = load(d, 2, 200, errors)
    r = d.req('reload')
    for t in ts:
        t.join()
    s2 = check(scrape(msock), 'after reload')
    # Every reply is counted once, under its outcome, across the generations of echo.
    codes = {}
    for e in errors:
        if not isinstance(e, dict):
            fail('calls across the reload: %r' % e)
        codes[e['error']['code']] = codes.get(e['error']['code'], 0) + 1
    if errors:
        print('note: %d calls failed across the reload (a daemon defect, not a metrics one): %r'
              % (len(errors), errors[:2]))
    if val(s2, 'corral_calls_total', type='echo', outcome='ok') != threads * per + 400 - len(errors):
        fail('echo ok counter after reload: %r' % val(s2, 'corral_calls_total', type='echo', outcome='ok'))
    for code, n in codes.items():
        if val(s2, 'corral_calls_total', type='echo', outcome=code) != n:
            fail('echo %s counter after reload: %r, replies %d' % (
                code, val(s2, 'corral_calls_total', type='echo', outcome=code), n))
    if val(s2, 'corral_pool_max_workers', type='echo') != 3:
        fail('pool max after reload: %r' % val(s2, 'corral_pool_max_workers', type='echo'))
    if val(s2, 'corral_calls_total', type='echo2', outcome='ok') != 0:
        fail('echo2 missing after reload')
    if any(dict(l).get('type') == 'sha256' for (n, l) in s2):
        fail('sha256 still shown after reload removed it (it had no worker left)')
    # SIGHUP does the same.
    d.p.send_signal(signal.SIGHUP)
    check(scrape(msock), 'after SIGHUP')
    if scrapes < 1:
        fail("no scrape while calls were in flight")
    print('%d scrapes under load; reload %s' % (scrapes, json.dumps(r)))

    # A metrics listener that cannot bind stops corrald at start, naming it.
    def must_not_start(listen, why):
        dd = os.path.join(RUN, 'bad%d' % abs(hash(listen)))
        os.makedirs(dd)
        p = os.path.join(dd, 'c.json')
        with open(p, 'w') as f:
            json.dump({'metrics': {'listen': listen}, 'types': {'e': {'builtin': 'echo'}}}, f)
        r = subprocess.run([CORRALD, '--config', p, '--socket', os.path.join(dd, 's.sock')],
                           capture_output=True, timeout=DEADLINE)
        err = r.stderr.decode()
        if r.returncode != 1 or 'metrics.listen' not in err or listen not in err or 'Sanitizer' in err:
            fail('%s: corrald rc %d, stderr %r' % (why, r.returncode, err))
        if os.path.exists(os.path.join(dd, 's.sock')):
            fail('%s: control socket left behind' % why)
    must_not_start(msock, 'UNIX path in use by another daemon')
    must_not_start(os.path.join(RUN, 'nosuchdir', 'm.sock'), 'UNIX path in a missing directory')
    taken = socket.socket()
    taken.bind(('127.0.0.1', 0))
    taken.listen(1)
    must_not_start('127.0.0.1:%d' % taken.getsockname()[1], 'TCP port in use')
    taken.close()
    check_dashboard(s2)
    d.stop()

    # A stale socket file (its daemon gone) is replaced, a non-socket file is not touched.
    stale = os.path.join(RUN, 'stale.sock')
    s = socket.socket(socket.AF_UNIX)
    s.bind(stale)
    s.close()
    d2 = Daemon({'metrics': {'listen': stale}, 'types': {'echo': {'builtin': 'echo'}}}, 'd2')
    check(scrape(stale), 'stale socket replaced')
    d2.stop()
    plain = os.path.join(RUN, 'plain')
    open(plain, 'w').write('keep me')
    must_not_start(plain, 'a regular file at the path')
    if open(plain).read() != 'keep me':
        fail('a regular file at metrics.listen was overwritten')
    print('ok')


try:
    main()
finally:
    shutil.rmtree(RUN, ignore_errors=True)
