// Command memberlist-scenarios runs HashiCorp's memberlist on the benchmark
// scenarios of docs/scenarios.md (S1 to S4), so that its figures can be put
// beside swim's: many members in one process over an in-memory network
// with the simulator's latency, loss and crash rules. It prints one JSON
// line per scenario with the simulator's field names.
//
// memberlist runs on real timers, so the scenarios run in real time and
// are not reproducible to the byte as the simulator's are; a figure that
// depends on timing can vary from run to run, and a loaded machine delays
// its timers.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

// network is the in-memory datagram and stream fabric the members share.
// A datagram arrives `latency` after it is sent unless lost (an independent
// trial per datagram) or either end has crashed. Streams are TCP over the
// same links, as in the simulator (swim-sim/src/net/tcp.rs): every packet
// of the handshake and every segment meets the same loss, and TCP resends
// what is lost, so a stream under loss is late rather than lost.
type network struct {
	latency time.Duration

	mu      sync.Mutex
	nodes   map[string]*transport
	crashed map[string]bool
	loss    float64
	rng     *rand.Rand

	msgs        int64
	bytes       int64
	streamBytes int64
	overflows   int64
}

func newNetwork(seed int64, latency time.Duration) *network {
	return &network{
		latency: latency,
		nodes:   map[string]*transport{},
		crashed: map[string]bool{},
		rng:     rand.New(rand.NewSource(seed)),
	}
}

func (n *network) setLoss(p float64) {
	n.mu.Lock()
	n.loss = p
	n.mu.Unlock()
}

func (n *network) crash(addr string) {
	n.mu.Lock()
	n.crashed[addr] = true
	n.mu.Unlock()
}

func (n *network) isCrashed(addr string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.crashed[addr]
}

// lost is one packet's loss trial, from the network's generator; n.mu is
// held.
func (n *network) lost() bool {
	return n.loss > 0 && n.rng.Float64() < n.loss
}

// transport is one member's end of the network (memberlist.Transport).
type transport struct {
	net     *network
	addr    string
	udp     *net.UDPAddr
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

func (n *network) newTransport(i int) *transport {
	ip := net.IPv4(10, byte(i>>16), byte(i>>8), byte(i))
	t := &transport{
		net:     n,
		addr:    net.JoinHostPort(ip.String(), "7946"),
		udp:     &net.UDPAddr{IP: ip, Port: 7946},
		packets: make(chan *memberlist.Packet, 4096),
		streams: make(chan net.Conn, 64),
		done:    make(chan struct{}),
	}
	n.mu.Lock()
	n.nodes[t.addr] = t
	n.mu.Unlock()
	return t
}

func (t *transport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.udp.IP, t.udp.Port, nil
}

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	now := time.Now()
	n := t.net
	atomic.AddInt64(&n.msgs, 1)
	atomic.AddInt64(&n.bytes, int64(len(b)))
	n.mu.Lock()
	dst := n.nodes[addr]
	drop := dst == nil || n.crashed[t.addr] || n.crashed[addr] || n.lost()
	n.mu.Unlock()
	if drop {
		return now, nil
	}
	buf := append([]byte(nil), b...)
	time.AfterFunc(n.latency, func() {
		// A crash also discards what was in flight.
		if n.isCrashed(addr) || n.isCrashed(t.addr) {
			return
		}
		select {
		case dst.packets <- &memberlist.Packet{Buf: buf, From: t.udp, Timestamp: time.Now()}:
		case <-dst.done:
		default:
			atomic.AddInt64(&n.overflows, 1)
		}
	})
	return now, nil
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *transport) StreamCh() <-chan net.Conn { return t.streams }

// TCP's timers, as in the simulator: a lost handshake is sent again after
// synRTO, 2 synRTO, 4 synRTO, ...; a lost segment after segmentRTO,
// doubling for every further loss of it; a segment still not through
// giveUp after it was first sent fails its write. All are scaled.
const (
	synRTO     = time.Second
	segmentRTO = 200 * time.Millisecond
	giveUp     = 10 * time.Second
	mss        = 1448 // payload bytes per segment
)

var (
	errRefused = errors.New("connection refused")
	errReset   = errors.New("connection reset by peer")
	errTimeout = errors.New("i/o timeout")
)

// DialTimeout connects after a round trip if the handshake (SYN out,
// SYN-ACK back) gets through both ways; a lost one is sent again until the
// timeout. A crashed member's host answers with a reset.
func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	n := t.net
	start := time.Now()
	limit := start.Add(timeout)
	for attempt := 0; ; attempt++ {
		n.mu.Lock()
		dst := n.nodes[addr]
		if dst == nil || n.crashed[t.addr] {
			n.mu.Unlock()
			return nil, errRefused
		}
		through := !n.lost() && !n.lost()
		n.mu.Unlock()
		if through {
			time.Sleep(2 * n.latency)
			if n.isCrashed(addr) {
				return nil, errRefused
			}
			a, b := net.Pipe()
			select {
			case dst.streams <- &stream{Conn: b, net: n, from: addr, to: t.addr}:
				return &stream{Conn: a, net: n, from: t.addr, to: addr}, nil
			case <-dst.done:
				return nil, errRefused
			case <-time.After(time.Until(limit)):
				return nil, errTimeout
			}
		}
		// Resends at 1, 3, 7, ... s after the first (Linux's SYN retries).
		next := start.Add(scaled(synRTO) * (1<<(attempt+1) - 1))
		if !next.Before(limit) {
			time.Sleep(time.Until(limit))
			return nil, errTimeout
		}
		time.Sleep(time.Until(next))
	}
}

func (t *transport) Shutdown() error {
	t.once.Do(func() { close(t.done) })
	return nil
}

// stream is one end of a connection: a write reaches the other end a
// latency later, plus the resends of its lost segments, or fails at the
// write deadline. It holds the writes behind it, so they keep their order.
type stream struct {
	net.Conn
	net      *network
	from, to string
	mu       sync.Mutex // held by a write while it is on its way
	deadline atomic.Value
}

func (s *stream) SetDeadline(d time.Time) error {
	s.deadline.Store(d)
	return s.Conn.SetDeadline(d)
}

func (s *stream) SetWriteDeadline(d time.Time) error {
	s.deadline.Store(d)
	return s.Conn.SetWriteDeadline(d)
}

// delay is how long b takes to get through: the latency, and the resends
// of its segments that are lost; false if one is still lost at giveUp.
func (n *network) delay(b []byte) (time.Duration, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	segments := (len(b) + mss - 1) / mss
	if segments == 0 {
		segments = 1
	}
	var resent time.Duration // when the last resend went out
	for rto := scaled(segmentRTO); ; rto *= 2 {
		lost := 0
		for i := 0; i < segments; i++ {
			if n.lost() {
				lost++
			}
		}
		if lost == 0 {
			return resent + n.latency, true
		}
		if resent+rto > scaled(giveUp) {
			return scaled(giveUp), false
		}
		resent += rto
		segments = lost
	}
}

func (s *stream) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.net
	if n.isCrashed(s.from) || n.isCrashed(s.to) {
		return 0, errReset
	}
	d, ok := n.delay(b)
	if deadline, _ := s.deadline.Load().(time.Time); !deadline.IsZero() && time.Until(deadline) < d {
		d, ok = time.Until(deadline), false
	}
	time.Sleep(d)
	if !ok {
		return 0, errTimeout
	}
	if n.isCrashed(s.from) || n.isCrashed(s.to) {
		return 0, errReset
	}
	k, err := s.Conn.Write(b)
	atomic.AddInt64(&n.streamBytes, int64(k))
	return k, err
}

// down is one member seeing another failed.
type down struct {
	at       time.Time
	observer int
	target   int
}

// cluster is n members and what they have told.
type cluster struct {
	net     *network
	members []*memberlist.Memberlist
	addrs   []string

	mu      sync.Mutex
	alive   []map[int]bool // per observer, the others it sees alive
	pairs   int            // ordered pairs (observer, other) seen alive
	changed chan struct{}
	downs   []down

	updates []update
	metas   []*meta

	joinErrors int64
	joinErr    atomic.Value
}

// events is one member's memberlist.EventDelegate.
type events struct {
	c    *cluster
	self int
}

func nodeIndex(name string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(name, "node-"))
	if err != nil {
		return -1
	}
	return i
}

func (e *events) NotifyJoin(node *memberlist.Node)  { e.c.seen(e.self, nodeIndex(node.Name), true) }
func (e *events) NotifyLeave(node *memberlist.Node) { e.c.seen(e.self, nodeIndex(node.Name), false) }
func (e *events) NotifyUpdate(node *memberlist.Node) {
	e.c.updated(e.self, nodeIndex(node.Name), string(node.Meta))
}

// meta is one member's memberlist.Delegate: it only serves the member's
// metadata, which `spread` changes.
type meta struct{ v atomic.Value }

func (d *meta) NodeMeta(limit int) []byte {
	b, _ := d.v.Load().([]byte)
	if len(b) > limit {
		return b[:limit]
	}
	return b
}
func (d *meta) NotifyMsg([]byte)                           {}
func (d *meta) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *meta) LocalState(join bool) []byte                { return nil }
func (d *meta) MergeRemoteState(buf []byte, join bool)     {}

// update is one member seeing another's new metadata.
type update struct {
	at       time.Time
	observer int
	target   int
	meta     string
}

func (c *cluster) updated(observer, target int, meta string) {
	if target < 0 || target == observer {
		return
	}
	c.mu.Lock()
	c.updates = append(c.updates, update{at: time.Now(), observer: observer, target: target, meta: meta})
	c.mu.Unlock()
}

func (c *cluster) seen(observer, target int, alive bool) {
	if target < 0 || target == observer {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	was := c.alive[observer][target]
	if alive && !was {
		c.alive[observer][target] = true
		c.pairs++
	} else if !alive {
		if was {
			delete(c.alive[observer], target)
			c.pairs--
		}
		c.downs = append(c.downs, down{at: time.Now(), observer: observer, target: target})
	}
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// dilation stretches every protocol timer, the latency and the scenario's
// waits by the same factor, and divides what is measured by it: the
// protocol runs as it would, at 1/dilation of the load, so that many
// members fit the machine's cores in real time.
var dilation time.Duration = 1

func scaled(d time.Duration) time.Duration { return d * dilation }

// config is DefaultLANConfig with its timers stretched by the dilation.
func config() *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	c.ProbeInterval = scaled(c.ProbeInterval)
	c.ProbeTimeout = scaled(c.ProbeTimeout)
	c.GossipInterval = scaled(c.GossipInterval)
	c.GossipToTheDeadTime = scaled(c.GossipToTheDeadTime)
	c.PushPullInterval = scaled(c.PushPullInterval)
	c.TCPTimeout = scaled(c.TCPTimeout)
	return c
}

func newCluster(n int, seed int64, latency time.Duration) (*cluster, error) {
	c := &cluster{net: newNetwork(seed, scaled(latency)), alive: make([]map[int]bool, n), changed: make(chan struct{}, 1)}
	for i := 0; i < n; i++ {
		c.alive[i] = map[int]bool{}
		conf := config()
		conf.Name = fmt.Sprintf("node-%d", i)
		t := c.net.newTransport(i)
		conf.Transport = t
		conf.LogOutput = io.Discard
		conf.Events = &events{c: c, self: i}
		d := &meta{}
		conf.Delegate = d
		c.metas = append(c.metas, d)
		m, err := memberlist.Create(conf)
		if err != nil {
			return nil, err
		}
		c.members = append(c.members, m)
		c.addrs = append(c.addrs, t.addr)
	}
	return c, nil
}

func (c *cluster) shutdown() {
	var wg sync.WaitGroup
	for _, m := range c.members {
		wg.Add(1)
		go func(m *memberlist.Memberlist) {
			defer wg.Done()
			_ = m.Shutdown()
		}(m)
	}
	wg.Wait()
}

// joinRetry is how long a refused join waits before it tries again.
// memberlist refuses push-pulls beyond 128 at once, which a join storm
// exceeds; serf's retry_join retries every 30 s by default, but 1 s keeps
// the bootstrap's figure about memberlist rather than about the retry.
const joinRetry = time.Second

// join has member i join member 0 after `after`, retrying until it is in.
func (c *cluster) join(i int, after time.Duration, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(after)
		for {
			_, err := c.members[i].Join([]string{c.addrs[0]})
			if err == nil {
				return
			}
			atomic.AddInt64(&c.joinErrors, 1)
			c.joinErr.Store(err.Error())
			time.Sleep(scaled(joinRetry))
		}
	}()
}

// waitPairs waits until `want` ordered pairs are seen alive, calling
// `progress` on every change; false when `limit` passes first.
func (c *cluster) waitPairs(want int, limit time.Duration, progress func(pairs int)) bool {
	deadline := time.After(limit)
	for {
		c.mu.Lock()
		p := c.pairs
		c.mu.Unlock()
		if progress != nil {
			progress(p)
		}
		if p >= want {
			return true
		}
		select {
		case <-c.changed:
		case <-deadline:
			return false
		}
	}
}

// report prints to stderr, every 10 s until stopped, how many of the `all`
// ordered pairs see each other alive and how many failures were seen.
func (c *cluster) report(start time.Time, all int) chan struct{} {
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				c.mu.Lock()
				pairs, downs := c.pairs, len(c.downs)
				c.mu.Unlock()
				fmt.Fprintf(os.Stderr, "%6.1f s: %d of %d pairs alive, %d failures seen, %d datagrams, %d joins failed (%v)\n",
					time.Since(start).Seconds(), pairs, all, downs, atomic.LoadInt64(&c.net.msgs),
					atomic.LoadInt64(&c.joinErrors), c.joinErr.Load())
			}
		}
	}()
	return stop
}

const (
	warmupCap = 600 * time.Second
	settle    = 30 * time.Second
	s2Cap     = 120 * time.Second
)

// warmUp: member i ≥ 1 joins member 0 at a uniform time in [0, 1 s); then
// until every member sees all the others alive, then 30 s more.
func (c *cluster) warmUp(rng *rand.Rand) bool {
	n := len(c.members)
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		c.join(i, scaled(time.Duration(rng.Intn(1000))*time.Millisecond), &wg)
	}
	stop := c.report(time.Now(), n*(n-1))
	ok := c.waitPairs(n*(n-1), scaled(warmupCap), nil)
	close(stop)
	wg.Wait()
	time.Sleep(scaled(settle))
	return ok
}

// warmed is a new cluster of n members, warmed up with joins drawn from a
// generator seeded with `seed`, which it hands on for the scenario's own
// draws; the outcome is "timeout" when the warm-up did not converge.
func warmed(n int, seed int64, latency time.Duration) (*cluster, *rand.Rand, string) {
	rng := rand.New(rand.NewSource(seed))
	c, err := newCluster(n, seed, latency)
	if err != nil {
		fail(err)
	}
	if !c.warmUp(rng) {
		return c, rng, "timeout"
	}
	return c, rng, "completed"
}

type line map[string]interface{}

type params struct {
	n       int
	seed    int64
	latency time.Duration
	runs    int
	loss    float64
	window  time.Duration
}

var started = time.Now()

func header(scenario string, p params, loss float64) line {
	conf := memberlist.DefaultLANConfig()
	return line{
		"scenario":   scenario,
		"impl":       "memberlist",
		"n":          p.n,
		"seed":       p.seed,
		"latency_ms": p.latency.Milliseconds(),
		"loss":       loss,
		"config": line{
			"library":                    "github.com/hashicorp/memberlist 0.2.2 (Debian golang-github-hashicorp-memberlist-dev 0.2.2-2)",
			"preset":                     "DefaultLANConfig",
			"probe_interval_ms":          conf.ProbeInterval.Milliseconds(),
			"probe_timeout_ms":           conf.ProbeTimeout.Milliseconds(),
			"indirect_checks":            conf.IndirectChecks,
			"suspicion_mult":             conf.SuspicionMult,
			"suspicion_max_timeout_mult": conf.SuspicionMaxTimeoutMult,
			"retransmit_mult":            conf.RetransmitMult,
			"gossip_interval_ms":         conf.GossipInterval.Milliseconds(),
			"gossip_nodes":               conf.GossipNodes,
			"push_pull_interval_ms":      conf.PushPullInterval.Milliseconds(),
			"packet_budget":              conf.UDPBufferSize,
			"compression":                conf.EnableCompression,
			"time_dilation":              int64(dilation),
		},
	}
}

func finish(l line, outcome string) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	l["outcome"] = outcome
	l["wall_s"] = round3(time.Since(started).Seconds())
	l["cpu_s"] = round3(cpu.Seconds())
	l["peak_rss_mib"] = round3(float64(ru.Maxrss) / 1024)
	out, _ := json.Marshal(l)
	fmt.Println(string(out))
}

func round3(x float64) float64 {
	return float64(int64(x*1000+0.5)) / 1000
}

// summary is a per-run figure over several runs: median (of an even count,
// the mean of the two middle values), min, max and the runs; a run that
// never got there is null and makes the median null if it is in the middle.
func summary(runs []*int64) line {
	var got []int64
	for _, r := range runs {
		if r != nil {
			got = append(got, *r)
		}
	}
	sort.Slice(got, func(a, b int) bool { return got[a] < got[b] })
	l := line{"per_run": runs, "median": nil, "min": nil, "max": nil}
	if len(got) == 0 {
		return l
	}
	l["min"], l["max"] = got[0], got[len(got)-1]
	missing := len(runs) - len(got)
	// Missing runs sort last.
	all := len(runs)
	mid := func(k int) *int64 {
		if k < len(got) {
			return &got[k]
		}
		return nil
	}
	var a, b *int64
	if all%2 == 1 {
		a, b = mid(all/2), mid(all/2)
	} else {
		a, b = mid(all/2-1), mid(all/2)
	}
	if a != nil && b != nil {
		l["median"] = float64(*a+*b) / 2
	}
	if missing > 0 {
		l["max"] = nil
	}
	return l
}

func ms(d time.Duration) *int64 {
	v := (d / dilation).Milliseconds()
	return &v
}

// s1: every member i ≥ 1 joins member 0 at once.
func s1(p params) {
	c, err := newCluster(p.n, p.seed, p.latency)
	if err != nil {
		fail(err)
	}
	defer c.shutdown()
	all := p.n * (p.n - 1)
	heap0 := heapInUse()
	marks := []float64{0.5, 0.9, 0.99, 1}
	reached := make([]*int64, len(marks))
	start := time.Now()
	var wg sync.WaitGroup
	for i := 1; i < p.n; i++ {
		c.join(i, 0, &wg)
	}
	stop := c.report(start, all)
	defer close(stop)
	ok := c.waitPairs(all, scaled(warmupCap), func(pairs int) {
		for k, f := range marks {
			if reached[k] == nil && float64(pairs) >= f*float64(all) {
				reached[k] = ms(time.Since(start))
			}
		}
	})
	l := header("S1", p, 0)
	l["convergence_ms"] = reached[3]
	l["t50_pairs_ms"], l["t90_pairs_ms"], l["t99_pairs_ms"] = reached[0], reached[1], reached[2]
	l["msgs_sent"] = atomic.LoadInt64(&c.net.msgs)
	l["bytes_sent"] = atomic.LoadInt64(&c.net.bytes)
	l["msgs_per_node"] = round3(float64(atomic.LoadInt64(&c.net.msgs)) / float64(p.n))
	l["bytes_per_node"] = round3(float64(atomic.LoadInt64(&c.net.bytes)) / float64(p.n))
	l["stream_bytes_sent"] = atomic.LoadInt64(&c.net.streamBytes)
	l["joins_refused"] = atomic.LoadInt64(&c.joinErrors)
	// The heap that n(n-1) more member entries took, the members' other
	// state (queues, buffers) included: an upper bound per entry.
	if ok {
		l["heap_bytes_per_member_entry"] = round3(float64(heapInUse()-heap0) / float64(all))
		// Once the news has spread: the queues have drained.
		time.Sleep(scaled(settle))
		l["settled_heap_bytes_per_member_entry"] = round3(float64(heapInUse()-heap0) / float64(all))
	}
	outcome := "completed"
	if !ok {
		outcome = "timeout"
	}
	wg.Wait()
	finish(l, outcome)
}

// s2: per run, a warmed-up cluster; a uniformly chosen member crashes 0 to
// 1 s into the window; until every live member has it failed.
func s2(p params) {
	var firstDown, allDown []*int64
	falseFailures := 0
	outcome := "completed"
	for r := 0; r < p.runs; r++ {
		c, rng, warm := warmed(p.n, p.seed*1000+int64(r), p.latency)
		if warm != "completed" {
			outcome = warm
		}
		x := rng.Intn(p.n)
		time.Sleep(scaled(time.Duration(rng.Intn(1000)) * time.Millisecond))
		c.mu.Lock()
		from := len(c.downs)
		c.mu.Unlock()
		crashed := time.Now()
		c.net.crash(c.addrs[x])
		var first *int64
		done := c.waitUntil(scaled(s2Cap), func() bool {
			seen := map[int]bool{}
			for _, d := range c.downs[from:] {
				if d.target == x && d.observer != x {
					if first == nil {
						first = ms(d.at.Sub(crashed))
					}
					seen[d.observer] = true
				}
			}
			return len(seen) == p.n-1
		})
		c.mu.Lock()
		var last *int64
		for _, d := range c.downs[from:] {
			if d.observer == x {
				continue
			}
			if d.target != x {
				falseFailures++
			} else if done {
				last = ms(d.at.Sub(crashed))
			}
		}
		c.mu.Unlock()
		firstDown = append(firstDown, first)
		allDown = append(allDown, last)
		c.shutdown()
		fmt.Fprintf(os.Stderr, "s2 run %d: crashed node-%d, first down %v ms, all live down %v ms\n", r, x, deref(first), deref(last))
	}
	l := header("S2", p, 0)
	l["runs"] = p.runs
	l["first_suspect_ms"] = nil // memberlist reports no suspicion to its delegates
	l["first_down_ms"] = summary(firstDown)
	l["all_live_down_ms"] = summary(allDown)
	l["false_failures"] = falseFailures
	finish(l, outcome)
}

// heapInUse is the live heap after a collection, in bytes.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func deref(v *int64) interface{} {
	if v == nil {
		return nil
	}
	return *v
}

// waitUntil checks `done` (under the cluster's lock) on every event until
// it holds or `limit` passes.
func (c *cluster) waitUntil(limit time.Duration, done func() bool) bool {
	deadline := time.After(limit)
	for {
		c.mu.Lock()
		ok := done()
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-c.changed:
		case <-deadline:
			return false
		}
	}
}

// s3: a warmed-up cluster, then loss p for the window, no crashes: every
// failure seen is a false one. At p = 0 the same window gives S4.
func s3(p params) {
	c, _, outcome := warmed(p.n, p.seed, p.latency)
	c.mu.Lock()
	from := len(c.downs)
	c.mu.Unlock()
	msgs0, bytes0, streams0 := atomic.LoadInt64(&c.net.msgs), atomic.LoadInt64(&c.net.bytes), atomic.LoadInt64(&c.net.streamBytes)
	c.net.setLoss(p.loss)
	time.Sleep(scaled(p.window))
	msgs := atomic.LoadInt64(&c.net.msgs) - msgs0
	bytes := atomic.LoadInt64(&c.net.bytes) - bytes0
	streams := atomic.LoadInt64(&c.net.streamBytes) - streams0
	c.mu.Lock()
	falseDowns := len(c.downs) - from
	whole := c.pairs == p.n*(p.n-1)
	c.mu.Unlock()
	c.shutdown()
	minutes := p.window.Minutes()
	l := header("S3", p, p.loss)
	l["window_ms"] = p.window.Milliseconds()
	l["false_positive_declarations"] = nil // who declared is not told to the delegates
	l["false_down_observations"] = falseDowns
	l["false_down_observations_per_node_per_min"] = round3(float64(falseDowns) / float64(p.n) / minutes)
	l["suspicions_raised"] = nil
	l["whole_at_end"] = whole
	l["packets_overflowed"] = atomic.LoadInt64(&c.net.overflows)
	finish(l, outcome)
	if p.loss == 0 {
		secs := p.window.Seconds()
		l := header("S4", p, 0)
		l["window_ms"] = p.window.Milliseconds()
		l["msgs_per_node_per_s"] = round3(float64(msgs) / float64(p.n) / secs)
		l["bytes_per_node_per_s"] = round3(float64(bytes) / float64(p.n) / secs)
		mean := 0.0
		if msgs > 0 {
			mean = float64(bytes) / float64(msgs)
		}
		l["mean_msg_bytes"] = round3(mean)
		l["stream_bytes_per_node_per_s"] = round3(float64(streams) / float64(p.n) / secs)
		finish(l, outcome)
	}
}

// spreadGap is the time between two injected updates, as in the simulator.
const spreadGap = 15 * time.Second

// spread: a warmed-up cluster; `runs` times, 15 s apart, a random member
// changes its metadata (one alive message at a new incarnation); when 50 %,
// 99 %, 99.99 % and 100 % of the members (the originator included) have
// it, in ms and in gossip rounds.
func spread(p params) {
	c, rng, outcome := warmed(p.n, p.seed, p.latency)
	marks := []struct {
		label string
		share float64
	}{{"50", 0.5}, {"99", 0.99}, {"9999", 0.9999}, {"100", 1}}
	needed := make([]int, len(marks))
	for k, m := range marks {
		needed[k] = int(math.Ceil(m.share * float64(p.n)))
		if needed[k] < 1 {
			needed[k] = 1
		}
	}
	reached := make([][]*int64, len(marks))
	missed := 0
	for r := 0; r < p.runs; r++ {
		x := rng.Intn(p.n)
		value := fmt.Sprintf("spread-%d", r)
		c.mu.Lock()
		from := len(c.updates)
		c.mu.Unlock()
		at := time.Now()
		c.metas[x].v.Store([]byte(value))
		if err := c.members[x].UpdateNode(scaled(spreadGap)); err != nil {
			fail(err)
		}
		time.Sleep(scaled(spreadGap))
		c.mu.Lock()
		seen := map[int]bool{x: true}
		got := make([]*int64, len(marks))
		for _, u := range c.updates[from:] {
			if u.target != x || u.meta != value || seen[u.observer] {
				continue
			}
			seen[u.observer] = true
			for k := range marks {
				if got[k] == nil && len(seen) >= needed[k] {
					got[k] = ms(u.at.Sub(at))
				}
			}
		}
		c.mu.Unlock()
		for k := range marks {
			if got[k] == nil && len(seen) >= needed[k] {
				zero := int64(0)
				got[k] = &zero
			}
			reached[k] = append(reached[k], got[k])
		}
		if len(seen) < p.n {
			missed++
		}
		fmt.Fprintf(os.Stderr, "spread run %d: node-%d, %d of %d reached, 100 %% at %v ms\n", r, x, len(seen), p.n, deref(got[3]))
	}
	c.shutdown()
	round := config().GossipInterval / dilation
	l := header("spread", p, 0)
	l["runs"] = p.runs
	l["gossip_interval_ms"] = round.Milliseconds()
	for k, m := range marks {
		var rounds []*int64
		for _, v := range reached[k] {
			if v == nil {
				rounds = append(rounds, nil)
				continue
			}
			r := (*v + round.Milliseconds() - 1) / round.Milliseconds()
			rounds = append(rounds, &r)
		}
		l["rounds_"+m.label] = medianMax(rounds)
		l["rounds_"+m.label+"_ms"] = medianMax(reached[k])
	}
	l["runs_not_reaching_all"] = missed
	if missed > 0 {
		outcome = "incomplete"
	}
	finish(l, outcome)
}

// medianMax is `{median, max}` of per-run figures (a run that never got
// there makes `max` null).
func medianMax(runs []*int64) line {
	s := summary(runs)
	return line{"median": s["median"], "max": s["max"]}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: memberlist-scenarios s1|s2|s3|s4|spread [--nodes N] [--seed S] [--runs R] [--loss P] [--window-s W] [--latency-ms L]")
		os.Exit(2)
	}
	scenario := os.Args[1]
	fs := flag.NewFlagSet(scenario, flag.ExitOnError)
	n := fs.Int("nodes", 100, "members")
	seed := fs.Int64("seed", 1, "seed of the joins, the crashes and the loss")
	runs := fs.Int("runs", 10, "S2 runs, spread updates")
	loss := fs.Float64("loss", 0, "S3 datagram loss")
	window := fs.Int("window-s", 300, "S3/S4 window, seconds")
	latency := fs.Int("latency-ms", 1, "one-way datagram latency")
	dilate := fs.Int("dilate", 1, "stretch every timer by this factor (and divide the times measured by it)")
	_ = fs.Parse(os.Args[2:])
	if *dilate < 1 {
		fmt.Fprintln(os.Stderr, "--dilate must be at least 1")
		os.Exit(2)
	}
	dilation = time.Duration(*dilate)
	p := params{n: *n, seed: *seed, runs: *runs, loss: *loss, window: time.Duration(*window) * time.Second, latency: time.Duration(*latency) * time.Millisecond}
	switch scenario {
	case "s1":
		s1(p)
	case "s2":
		s2(p)
	case "s3":
		s3(p)
	case "spread":
		spread(p)
	case "s4":
		p.loss = 0
		s3(p)
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
}
