# tally bench - the charts, drawn by report.py with gnuplot:
#   gnuplot -e "kind='loads'; datafile='chart.dat'; outfile='bench.png'; c1='16'; c2='64'" chart.gp
#   gnuplot -e "kind='memory'; datafile='memory.dat'; outfile='memory.png'" chart.gp
# chart.dat: "label" req/s@c1 p99_ms@c1 req/s@c2 p99_ms@c2, one target a line.
#   gnuplot -e "kind='open'; datafile='open.dat'; outfile='open.png'; c1='64'; c2='64'" chart.gp
# memory.dat: one block per responder: its "name", then "seconds MiB" lines.
# open.dat: one block per target: its "label", then "percent p50_ms
# p99_ms p99.9_ms" lines.

set terminal pngcairo size 1200,900 font "sans,10"
set output outfile
set grid ytics

if (kind eq 'memory') {
	set terminal pngcairo size 900,450 font "sans,10"
	set output outfile
	set title "tally responders: resident memory (all processes) during the mixed load"
	set xlabel "seconds"
	set ylabel "MiB"
	set yrange [0:*]
	set key outside right
	plot for [i=0:*] datafile index i using 1:2 with lines linewidth 2 title columnheader(1)
} else {
	if (kind eq 'open') {
		set terminal pngcairo size 1200,1100 font "sans,10"
		set output outfile
		set multiplot layout 3,1 title "open loop, ".c1." connections: latency from each request's due time against the offered rate (log scale, lower is better)"
		set xlabel "offered rate, % of the floor's closed-loop maximum"
		set ylabel "ms"
		set logscale y
		set xrange [0:100]
		set key outside right
		set title "p50"
		plot for [i=0:*] datafile index i using 1:2 with linespoints linewidth 2 title columnheader(1)
		set title "p99"
		plot for [i=0:*] datafile index i using 1:3 with linespoints linewidth 2 title columnheader(1)
		set title "p99.9"
		plot for [i=0:*] datafile index i using 1:4 with linespoints linewidth 2 title columnheader(1)
		unset multiplot
	} else {
		set multiplot layout 2,1
		set style data histograms
		set style histogram clustered gap 1
		set style fill solid 0.85 border -1
		set logscale y
		set xtics rotate by -25 scale 0 nomirror
		set key outside top center horizontal
		# room for the last rotated label, which reaches past the last bar
		set bmargin 8
		set rmargin 16
		set title "requests per second (log scale, higher is better)"
		plot datafile using 2:xtic(1) title c1." connections", \
			'' using 4 title c2." connections"
		set title "p99 latency in ms (log scale, lower is better)"
		plot datafile using 3:xtic(1) title c1." connections", \
			'' using 5 title c2." connections"
		unset multiplot
	}
}
