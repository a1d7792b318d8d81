# gatehouse benchmark chart (bench/run.sh calls it):
#   gnuplot -e "dir='WORKDIR'; out='bench/results.png'" bench/chart.gp
# Reads dir/fronts_hi.dat ("front" rps p50_us p99_us, the -c64 runs),
# dir/fronts_c1.dat (same columns, -c1) and dir/scale.dat
# (users decide_ns lookup_ns request_ns).
set terminal pngcairo size 1500,1050 font "DejaVu Sans,12" noenhanced
set output out
set multiplot layout 2,2 title "gatehouse vs plain nginx vs nginx + auth_request — medians, TLS 1.3 over loopback" font ",15"

set style fill solid 0.85 border -1
set grid ytics
set yrange [0:*]
set xtics nomirror
set ytics nomirror
set offsets 0, 0, graph 0.12, 0

# 1. throughput at -c64
set title "Throughput at wrk -c64 (req/s, higher is better)"
unset key
set boxwidth 0.6
set xrange [-0.6:3.6]
plot dir."/fronts_hi.dat" using 0:2:xtic(1) with boxes lc rgb "#4477aa", \
     "" using 0:2:(sprintf("%.0f", $2)) with labels offset 0,0.9 notitle

# 2. latency at -c64
set title "Latency at wrk -c64 (ms, lower is better)"
set key top left
set boxwidth 0.35
plot dir."/fronts_hi.dat" using ($0-0.18):($3/1000):xtic(1) with boxes title "p50" lc rgb "#88ccee", \
     "" using ($0+0.18):($4/1000) with boxes title "p99" lc rgb "#cc6677", \
     "" using ($0-0.18):($3/1000):(sprintf("%.2f", $3/1000)) with labels offset 0,0.8 notitle, \
     "" using ($0+0.18):($4/1000):(sprintf("%.2f", $4/1000)) with labels offset 0,0.8 notitle

# 3. latency at -c1
set title "Latency at wrk -c1 (µs, lower is better)"
set xrange [-0.6:2.6]
plot dir."/fronts_c1.dat" using ($0-0.18):3:xtic(1) with boxes title "p50" lc rgb "#88ccee", \
     "" using ($0+0.18):4 with boxes title "p99" lc rgb "#cc6677", \
     "" using ($0-0.18):3:(sprintf("%.0f", $3)) with labels offset 0,0.8 notitle, \
     "" using ($0+0.18):4:(sprintf("%.0f", $4)) with labels offset 0,0.8 notitle

# 4. per-request decision work vs users
set title "Per-request decision work vs users in the store (ns, median)"
set offsets 0, 0, graph 0.35, 0
set logscale x 10
set xrange [500:2000000]
set format x "%.0s%c"
set xlabel "users (5 role bindings each; 10,000 roles, 1,000 rules)"
set key top left Left reverse box opaque
plot dir."/scale.dat" using 1:4 with linespoints title "access path: session + user read, decide" lw 2 pt 7 ps 1.3 lc rgb "#cc6677", \
     "" using 1:3 with linespoints title "user lookup by id + decide" lw 2 pt 5 ps 1.3 lc rgb "#4477aa", \
     "" using 1:2 with linespoints title "decide only (no store)" lw 2 pt 9 ps 1.3 lc rgb "#228833"
unset multiplot
