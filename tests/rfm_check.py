"""Independent check of a refreshed members table, in exact rational arithmetic.

Reads the members table with DuckDB, recomputes from the issue's definitions (not from
memberflow's config or code) the cut points (percentile_cont, linear interpolation), the
1-5 scores, the RFM segment and the default tags, and compares each member's row.
Prints `mismatches N` and up to 10 examples; `cuts` lines give the expected cut points.

With --stored-cuts the cut points and monetary_p90 are read from the latest refresh in
rfm_thresholds instead (to check members scored between refreshes, which use them).

usage: python3 tests/rfm_check.py DATA_DIR [--stored-cuts] [--extra-tag NAME SQL_PREDICATE]
"""
import argparse
from fractions import Fraction

import duckdb

ap = argparse.ArgumentParser()
ap.add_argument("data")
ap.add_argument("--stored-cuts", action="store_true")
ap.add_argument("--extra-tag", nargs=2)
args = ap.parse_args()
data = args.data
extra = args.extra_tag or []
cols = "member_id, recency_days, days_since_first_purchase, frequency, monetary, purchases_total, stores_in_window, r_score, f_score, m_score, rfm_segment, tags"
extra_sql = f", ({extra[1]}) AS extra_tag" if extra else ""
con = duckdb.connect(config={'threads': 1})  # see tests/support.rs: DuckDB 1.4.2 parallel GROUP BY quirk
rows = con.sql(f"SELECT {cols}{extra_sql} FROM read_parquet('{data}/members/members.parquet')").fetchall()


def pct_cont(values, p):
    v = sorted(values)
    pos = Fraction(p, 100) * (len(v) - 1)
    lo = int(pos)  # floor, pos >= 0
    frac = pos - lo
    if frac == 0:
        return Fraction(v[lo])
    return v[lo] + frac * (v[lo + 1] - v[lo])


def money(x):
    return None if x is None else Fraction(str(x))


buyers = [r for r in rows if r[5] >= 1]
cuts = {}
for name, k in (("recency_days", 1), ("frequency", 3), ("monetary", 4)):
    vals = [money(r[k]) if k == 4 else Fraction(r[k]) for r in buyers]
    cuts[name] = [pct_cont(vals, p) for p in (20, 40, 60, 80)] if vals else [Fraction(0)] * 4
    print("cuts", name, " ".join(str(float(c)) for c in cuts[name]))
active = [money(r[4]) for r in rows if r[3] is not None and r[3] >= 1]
p90 = pct_cont(active, 90) if active else None
if args.stored_cuts:
    stored = con.sql(
        f"SELECT name, position, value::VARCHAR FROM read_parquet('{data}/rfm_thresholds/*.parquet') "
        f"WHERE refresh_id = (SELECT max(refresh_id) FROM read_parquet('{data}/rfm_thresholds/*.parquet')) ORDER BY name, position"
    ).fetchall()
    for name in cuts:
        cuts[name] = [Fraction(v) for n, _, v in stored if n == name]
    p90 = next((Fraction(v) for n, _, v in stored if n == "monetary_p90" and v is not None), None)


def segment(r, f):
    if r <= 2 and f <= 2: return "hibernating"
    if r <= 2 and f in (3, 4): return "at_risk"
    if r <= 2 and f == 5: return "cant_lose"
    if r == 3 and f <= 2: return "about_to_sleep"
    if r == 3 and f == 3: return "need_attention"
    if r in (3, 4) and f >= 4: return "loyal_customers"
    if r == 4 and f == 1: return "promising"
    if r == 5 and f == 1: return "new_customers"
    if r >= 4 and f in (2, 3): return "potential_loyalists"
    if r == 5 and f >= 4: return "champions"
    return None


mismatches = []
for row in rows:
    mid, rec, since_first, freq, mon, total, stores, rs, fs, ms, seg, tags = row[:12]
    want = {"r": None, "f": None, "m": None, "seg": None}
    if total >= 1:
        want["r"] = 1 + sum(1 for c in cuts["recency_days"] if rec < c)
        want["f"] = 1 + sum(1 for c in cuts["frequency"] if freq > c)
        want["m"] = 1 + sum(1 for c in cuts["monetary"] if money(mon) > c)
        want["seg"] = segment(want["r"], want["f"])
    t = set()
    if since_first is not None and since_first < 30: t.add("new")
    if total >= 2: t.add("returning")
    if freq is not None and rec is not None and freq >= 4 and rec < 90: t.add("loyal")
    if mon is not None and p90 is not None and money(mon) >= p90: t.add("high_value")
    if total >= 1 and rec is not None and rec >= 180: t.add("lapsed")
    if stores is not None and stores >= 2: t.add("multi_store")
    if extra and row[12]: t.add(extra[0])
    got = (rs, fs, ms, seg, sorted(tags))
    exp = (want["r"], want["f"], want["m"], want["seg"], sorted(t))
    if got != exp:
        mismatches.append((mid, got, exp))
print("members", len(rows), "buyers", len(buyers))
print("monetary_p90", None if p90 is None else str(p90))
print("mismatches", len(mismatches))
for m in mismatches[:10]:
    print("  ", m)
