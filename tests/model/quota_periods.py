"""An independent model of RL.QUOTA's periods, in Python's zoneinfo over the
tzdata package (run with PYTHONTZPATH= so that the host's zoneinfo is not
read), checked against the module on random periods, zones, anchors and
times: python3 quota_periods.py PORT COUNT SEED. Prints each mismatch and
exits 1 if any."""
import random, socket, datetime as dt, sys
from zoneinfo import ZoneInfo
UTC = dt.timezone.utc

def resp(sock, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    return read(sock.makefile('rb'))

def read(f):
    line = f.readline()
    t, rest = line[:1], line[1:-2]
    if t == b':': return int(rest)
    if t == b'$':
        n = int(rest)
        if n < 0: return None
        d = f.read(n + 2)[:-2]; return d.decode()
    if t == b'*':
        return [read(f) for _ in range(int(rest))]
    if t == b'-': raise Exception(rest.decode())
    if t == b'+': return rest.decode()

def tzof(name):
    if name == 'UTC': return UTC
    if name[0] in '+-':
        h, m = int(name[1:3]), int(name[4:6]); s = 1 if name[0] == '+' else -1
        return dt.timezone(s * dt.timedelta(hours=h, minutes=m))
    return ZoneInfo(name)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
MS = dt.timedelta(milliseconds=1)
def resolve(tz, local):  # compatible: fold=0
    return (local.replace(tzinfo=tz, fold=0) - EPOCH) // MS

def to_local(tz, ms):
    return (EPOCH + ms * MS).astimezone(tz).replace(tzinfo=None)

def month_add(y, m, k):
    t = y * 12 + (m - 1) + k
    return t // 12, t % 12 + 1

import calendar
def start_of(period, tz, origin, k):
    if period in ('day', 'week'):
        n = 1 if period == 'day' else 7
        d = origin.date() + dt.timedelta(days=k * n)
        return resolve(tz, dt.datetime.combine(d, origin.time()))
    n = {'month': 1, 'quarter': 3, 'year': 12}[period]
    y, m = month_add(origin.year, origin.month, k * n)
    if y < 1 or y > 9999: return None
    d = min(origin.day, calendar.monthrange(y, m)[1])
    return resolve(tz, dt.datetime(y, m, d, origin.hour, origin.minute, origin.second, origin.microsecond))

def bounds(period, zone, anchor, at):
    tz = tzof(zone)
    if anchor is None:
        origin = dt.datetime(2000, 1, 3 if period == 'week' else 1)
        origin_ms = resolve(tz, origin)
    else:
        origin = to_local(tz, anchor); origin_ms = anchor
    if period in ('minute', 'hour'):
        step = 60000 if period == 'minute' else 3600000
        s = origin_ms + (at - origin_ms) // step * step
        return s, s + step
    k = 0
    # search: coarse guess then walk
    local = to_local(tz, at)
    if period in ('day', 'week'):
        n = 1 if period == 'day' else 7
        k = (local.date() - origin.date()).days // n
    else:
        n = {'month': 1, 'quarter': 3, 'year': 12}[period]
        k = ((local.year * 12 + local.month) - (origin.year * 12 + origin.month)) // n
    while start_of(period, tz, origin, k) > at: k -= 1
    while start_of(period, tz, origin, k + 1) <= at: k += 1
    return start_of(period, tz, origin, k), start_of(period, tz, origin, k + 1)

import zoneinfo
assert zoneinfo.TZPATH == (), 'run with PYTHONTZPATH= (the tzdata package, not the host)'
port = int(sys.argv[1]); n = int(sys.argv[2])
sock = socket.create_connection(('127.0.0.1', port))
zones = ['UTC', '+05:45', '-09:30', '+14:00', 'Europe/Berlin', 'America/New_York', 'America/Sao_Paulo', 'Australia/Lord_Howe', 'Pacific/Apia', 'Asia/Tehran', 'America/Santiago', 'Africa/Casablanca', 'Europe/London', 'Pacific/Chatham', 'America/St_Johns', 'Asia/Kolkata', 'America/Havana', 'Asia/Gaza']
periods = ['minute', 'hour', 'day', 'week', 'month', 'quarter', 'year']
rnd = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
lo = int(dt.datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1000)
hi = int(dt.datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
bad = 0
for i in range(n):
    zone = rnd.choice(zones); period = rnd.choice(periods)
    anchor = None if rnd.random() < 0.4 else rnd.randrange(lo, hi)
    if anchor is not None and rnd.random() < 0.3:
        # month-end and DST-ish anchors: local 31st/29th, 02:30
        tz = tzof(zone); base = to_local(tz, anchor)
        day = rnd.choice([28, 29, 30, 31])
        try:
            anchor = resolve(tz, base.replace(month=rnd.choice([1, 3, 5, 10]), day=day, hour=rnd.choice([0, 1, 2, 3, 23]), minute=30))
        except ValueError:
            pass
    at = rnd.randrange(lo, hi)
    if rnd.random() < 0.3:
        s, e = bounds(period, zone, anchor, at)
        at = rnd.choice([s, e - 1, e, s - 1])
    key = 'k%d' % i
    args = ['RL.QUOTA', key, 10, period, 'TZ', zone] + (['ANCHOR', anchor] if anchor is not None else []) + ['AT', at]
    r = resp(sock, *args)
    v = resp(sock, 'RL.INSPECT', key, 'AT', at)
    exp = bounds(period, zone, anchor, at)
    if v is None:
        v = ['period_start_ms', exp[0], 'period_end_ms', exp[1]]
    d = dict(zip(v[::2], v[1::2]))
    got = (d['period_start_ms'], d['period_end_ms'])
    if got != exp or r[4] != exp[1] - at:
        bad += 1
        if bad < 15: print('MISMATCH', period, zone, anchor, at, 'got', got, 'exp', exp, r)
    resp(sock, 'DEL', key)
print('checked', n, 'mismatches', bad)
sys.exit(1 if bad else 0)
