#!/usr/bin/env bash
# Run the adversarial catalogue and the fault tests against the sanitizer
# build, and write their figures into docs/security-testing.md (between the
# "figures" markers): variants tried and variants that got through, per
# section; fuzzing time, executions and findings per driver (summed from
# build/fuzz/history.tsv, which scripts/fuzz.sh appends to).
#   scripts/security-report.sh          run the suites, then write
#   scripts/security-report.sh --no-run write from the last run's results
# Exits non-zero when any variant got through.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=build/security
mkdir -p "$out"

if [ "${1:-}" != "--no-run" ]; then
  make -s --no-print-directory san >/dev/null || { echo "build failed" >&2; exit 1; }
  GATEHOUSE_BUILD="$top/build/san" /usr/bin/python3 -m pytest -p no:cacheprovider -q \
      --junitxml="$out/junit.xml" \
      tests/integration/test_adversarial.py tests/integration/test_adversarial_session.py \
      tests/integration/test_faults.py >"$out/pytest.log" 2>&1
  tail -1 "$out/pytest.log"
fi

/usr/bin/python3 - "$out/junit.xml" build/fuzz/history.tsv tests/fuzz/corpus \
    docs/security-testing.md <<'EOF'
import collections, os, re, sys, xml.etree.ElementTree as ET

junit, history, corpus, doc = sys.argv[1:5]

# test function -> catalogue section (docs/security-testing.md)
SECTIONS = [
    ("framing", "Request framing and smuggling"),
    ("http10", "Request framing and smuggling"),
    ("odd_line", "Request framing and smuggling"),
    ("forged_identity", "Identity spoofing"),
    ("spoofed_client_address", "Identity spoofing"),
    ("path_override", "Identity spoofing"),
    ("host_override", "Identity spoofing"),
    ("path_variant", "Paths"),
    ("odd_request_target", "Paths"),
    ("malformed_host", "Host"),
    ("unchecked_host", "Host"),
    ("host_not_configured", "Host"),
    ("hostile_rd", "Return targets (rd)"),
    ("csrf", "CSRF"),
    ("origin", "CSRF"),
    ("cross_site_logout", "CSRF"),
    ("session_token", "Sessions and cookies"),
    ("tossed_cookie", "Sessions and cookies"),
    ("two_session", "Sessions and cookies"),
    ("malformed_session", "Sessions and cookies"),
    ("session_cookie_is", "Sessions and cookies"),
    ("fixated", "Sessions and cookies"),
    ("logged_out", "Sessions and cookies"),
    ("cookie_replayed", "Sessions and cookies"),
    ("backend_cannot_plant", "Sessions and cookies"),
    ("forwarded_chain", "Client address chain"),
    ("other_case", "Password rules"),
    ("oversized", "Limits"),
    ("slow_client", "Limits"),
    ("disk_full", "Faults"),
    ("map_full", "Faults"),
    ("store_fault", "Faults"),
    ("backend_fault", "Faults"),
    ("reload", "Faults"),
    ("killed_worker", "Faults"),
]
ORDER = []
for _, s in SECTIONS:
    if s not in ORDER:
        ORDER.append(s)

tried = collections.Counter()
through = collections.Counter()
skipped = collections.Counter()
failed_names = []
if os.path.exists(junit):
    for tc in ET.parse(junit).getroot().iter("testcase"):
        name = tc.get("name", "")
        sec = next((s for k, s in SECTIONS if k in name), "Other")
        if sec not in ORDER:
            ORDER.append(sec)
        if tc.find("skipped") is not None:
            skipped[sec] += 1
            continue
        tried[sec] += 1
        if tc.find("failure") is not None or tc.find("error") is not None:
            through[sec] += 1
            failed_names.append(name)

fuzz = collections.OrderedDict()
if os.path.exists(history):
    for line in open(history):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 5:
            continue
        _, drv, secs, runs, found = parts
        f = fuzz.setdefault(drv, [0, 0, 0])
        f[0] += int(secs or 0)
        f[1] += int(runs or 0)
        f[2] += int(found or 0)
seeds = {d: len(os.listdir(os.path.join(corpus, d)))
         for d in sorted(os.listdir(corpus))} if os.path.isdir(corpus) else {}

lines = ["| section | variants tried | got through | skipped |", "|---|---:|---:|---:|"]
for sec in ORDER:
    if tried[sec] or skipped[sec]:
        lines.append("| %s | %d | %d | %d |" % (sec, tried[sec], through[sec], skipped[sec]))
lines.append("| **total** | **%d** | **%d** | %d |" % (sum(tried.values()), sum(through.values()),
                                                    sum(skipped.values())))
if failed_names:
    lines += ["", "Got through (fix before merging):", ""] + ["- `%s`" % n for n in failed_names]
lines += ["", "| fuzz driver | CPU seconds | executions | findings | seeds |",
          "|---|---:|---:|---:|---:|"]
for drv in sorted(set(fuzz) | set(seeds)):
    secs, runs, found = fuzz.get(drv, [0, 0, 0])
    lines.append("| `%s` | %d | %d | %d | %d |" % (drv, secs, runs, found, seeds.get(drv, 0)))
lines += ["", "Findings are counted when they were found (each was fixed or the driver's "
          "property corrected; see Findings below); a run of `scripts/fuzz.sh` adds a line "
          "per driver to `build/fuzz/history.tsv`."]
block = "\n".join(lines)

text = open(doc).read()
begin, end = "<!-- figures:begin -->", "<!-- figures:end -->"
if begin not in text or end not in text:
    sys.exit("no figures markers in " + doc)
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc, "w").write(head + begin + "\n" + block + "\n" + end + tail)
print(block)
sys.exit(1 if sum(through.values()) else 0)
EOF
