// Command memberlist-recorder runs real HashiCorp memberlist nodes in one
// process over an in-memory network that records every datagram and both
// directions of every stream, then writes a deduplicated sample of the
// recordings and a manifest. See README.md.
package main

import (
	"bytes"
	"compress/lzw"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"io/ioutil"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-msgpack/codec"
	"github.com/hashicorp/memberlist"
)

// Message type bytes of memberlist 0.2.2 (net.go).
const (
	pingMsg         = 0
	indirectPingMsg = 1
	ackRespMsg      = 2
	suspectMsg      = 3
	aliveMsg        = 4
	deadMsg         = 5
	pushPullMsg     = 6
	compoundMsg     = 7
	userMsg         = 8
	compressMsg     = 9
	encryptMsg      = 10
	nackRespMsg     = 11
	hasCrcMsg       = 12
	errMsg          = 13
)

const bindPort = 7946

// ---------------------------------------------------------------------
// Settings: one run of the scenario each.

type setting struct {
	name     string
	ipv6     bool // members on fd00::N rather than 10.0.0.N
	large    bool // n2's push-pull user state is some 12 KB
	compress bool
	key      []byte // nil: no encryption
	protocol uint8  // 1 selects encryption version 0, 2 version 1
}

func key(n int, fill byte) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = fill + byte(i)
	}
	return k
}

var settings = []setting{
	{name: "plain", compress: false, protocol: 2},
	{name: "lzw", compress: true, ipv6: true, large: true, protocol: 2},
	{name: "aes1", compress: false, key: key(32, 0x10), protocol: 2},
	{name: "aes1-lzw", compress: true, large: true, key: key(24, 0x40), protocol: 2},
	{name: "aes0-lzw", compress: true, key: key(16, 0x70), protocol: 1},
	{name: "aes0", compress: false, key: key(16, 0xa0), protocol: 1},
}

// The intruder's key when the cluster has none (it gets an error reply).
var intruderKey = key(16, 0xd0)

// ---------------------------------------------------------------------
// Recording.

type record struct {
	setting   string
	transport string // "dgram" or "stream"
	dir       string // streams: "req" (dialer's bytes) or "resp"
	from, to  string
	key       []byte // the sender's key, nil if it has none
	protocol  uint8
	buf       []byte
}

type recorder struct {
	mu      sync.Mutex
	records []*record
}

func (r *recorder) add(rec *record) {
	r.mu.Lock()
	r.records = append(r.records, rec)
	r.mu.Unlock()
}

// ---------------------------------------------------------------------
// The in-memory network.

type network struct {
	mu      sync.Mutex
	setting string
	nodes   map[string]*transport // by "ip:port"
	blocked map[[2]string]bool    // datagrams from -> to (node names) dropped
	rec     *recorder
}

func newNetwork(s string, rec *recorder) *network {
	return &network{setting: s, nodes: map[string]*transport{}, blocked: map[[2]string]bool{}, rec: rec}
}

func (n *network) block(from, to string, on bool) {
	n.mu.Lock()
	n.blocked[[2]string{from, to}] = on
	n.mu.Unlock()
}

type transport struct {
	net      *network
	name     string
	ip       net.IP
	addr     string
	key      []byte
	protocol uint8
	packets  chan *memberlist.Packet
	streams  chan net.Conn

	mu   sync.Mutex
	down bool
}

func (n *network) newTransport(name string, ip net.IP, key []byte, protocol uint8) *transport {
	t := &transport{
		net: n, name: name, ip: ip, key: key, protocol: protocol,
		addr:    net.JoinHostPort(ip.String(), fmt.Sprint(bindPort)),
		packets: make(chan *memberlist.Packet, 1024),
		streams: make(chan net.Conn, 64),
	}
	n.mu.Lock()
	n.nodes[t.addr] = t
	n.mu.Unlock()
	return t
}

func (t *transport) isDown() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.down
}

// kill makes the node unreachable at once: nothing to or from it is
// delivered any more, dials to it are refused.
func (t *transport) kill() {
	t.mu.Lock()
	t.down = true
	t.mu.Unlock()
}

func (t *transport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.ip, bindPort, nil
}

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	now := time.Now()
	if t.isDown() {
		return now, nil
	}
	n := t.net
	n.mu.Lock()
	dst := n.nodes[addr]
	blocked := dst != nil && n.blocked[[2]string{t.name, dst.name}]
	n.mu.Unlock()
	buf := append([]byte(nil), b...)
	to := addr
	if dst != nil {
		to = dst.name
	}
	n.rec.add(&record{setting: n.setting, transport: "dgram", from: t.name, to: to, key: t.key, protocol: t.protocol, buf: buf})
	if dst == nil || blocked || dst.isDown() {
		return now, nil
	}
	from := &net.UDPAddr{IP: t.ip, Port: bindPort}
	select {
	case dst.packets <- &memberlist.Packet{Buf: append([]byte(nil), b...), From: from, Timestamp: now}:
	default:
	}
	return now, nil
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *transport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	n := t.net
	n.mu.Lock()
	dst := n.nodes[addr]
	n.mu.Unlock()
	if t.isDown() || dst == nil || dst.isDown() {
		return nil, fmt.Errorf("dial %s: connection refused", addr)
	}
	reqRec := &record{setting: n.setting, transport: "stream", dir: "req", from: t.name, to: dst.name, key: t.key, protocol: t.protocol}
	respRec := &record{setting: n.setting, transport: "stream", dir: "resp", from: dst.name, to: t.name, key: dst.key, protocol: dst.protocol}
	n.rec.add(reqRec)
	n.rec.add(respRec)
	up, down := newPipe(), newPipe()
	local := &net.TCPAddr{IP: t.ip, Port: 40000}
	remote := &net.TCPAddr{IP: dst.ip, Port: bindPort}
	dialer := &conn{in: down, out: up, rec: reqRec, rmu: &n.rec.mu, local: local, remote: remote}
	accepted := &conn{in: up, out: down, rec: respRec, rmu: &n.rec.mu, local: remote, remote: local}
	select {
	case dst.streams <- accepted:
		return dialer, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("dial %s: timeout", addr)
	}
}

func (t *transport) Shutdown() error {
	t.kill()
	return nil
}

// pipe is one direction of a stream: an unbounded buffer, so that a write
// never waits for the reader (as with a socket's send buffer).
type pipe struct {
	mu     sync.Mutex
	cond   *sync.Cond
	data   []byte
	closed bool
}

func newPipe() *pipe {
	p := &pipe{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *pipe) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cond.Broadcast()
}

type conn struct {
	in, out       *pipe
	rec           *record
	rmu           *sync.Mutex
	local, remote net.Addr

	dmu      sync.Mutex
	deadline time.Time
	timer    *time.Timer
}

func (c *conn) Read(b []byte) (int, error) {
	p := c.in
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if len(p.data) > 0 {
			n := copy(b, p.data)
			p.data = p.data[n:]
			return n, nil
		}
		if p.closed {
			return 0, io.EOF
		}
		c.dmu.Lock()
		d := c.deadline
		c.dmu.Unlock()
		if !d.IsZero() && !time.Now().Before(d) {
			return 0, os.ErrDeadlineExceeded
		}
		p.cond.Wait()
	}
}

func (c *conn) Write(b []byte) (int, error) {
	p := c.out
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0, io.ErrClosedPipe
	}
	p.data = append(p.data, b...)
	p.mu.Unlock()
	p.cond.Broadcast()
	c.rmu.Lock()
	c.rec.buf = append(c.rec.buf, b...)
	c.rmu.Unlock()
	return len(b), nil
}

func (c *conn) Close() error {
	c.out.close()
	c.in.close()
	return nil
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

func (c *conn) SetDeadline(t time.Time) error {
	c.dmu.Lock()
	c.deadline = t
	if c.timer != nil {
		c.timer.Stop()
	}
	if !t.IsZero() {
		in := c.in
		c.timer = time.AfterFunc(time.Until(t), func() {
			in.mu.Lock()
			in.mu.Unlock()
			in.cond.Broadcast()
		})
	}
	c.dmu.Unlock()
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error { return c.SetDeadline(t) }
func (c *conn) SetWriteDeadline(time.Time) error  { return nil }

// ---------------------------------------------------------------------
// Delegates: metadata, user state, user broadcasts, ack payloads.

type delegate struct {
	name    string
	large   bool
	noState bool
	mu      sync.Mutex
	meta    []byte
	out     [][]byte
}

func (d *delegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.meta
}
func (d *delegate) NotifyMsg([]byte) {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.out
	d.out = nil
	return out
}
func (d *delegate) LocalState(join bool) []byte {
	if d.noState {
		return nil
	}
	state := []byte(fmt.Sprintf("state of %s (join %v)", d.name, join))
	if d.large {
		state = append(state, largeState()...)
	}
	return state
}

// largeState is 12 KB of text that compresses poorly enough to fill
// the LZW table past 4,096 codes (so the compressor emits a clear code
// and widths grow from 9 to 12 bits), the same on every call.
func largeState() []byte {
	out := make([]byte, 12*1024)
	x := uint32(2463534242)
	for i := range out {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out[i] = "abcdefghijklmnop"[x%16]
	}
	return out
}
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

type pinger struct{ payload []byte }

func (p pinger) AckPayload() []byte                                         { return p.payload }
func (p pinger) NotifyPingComplete(*memberlist.Node, time.Duration, []byte) {}

// ---------------------------------------------------------------------
// The scenario.

type node struct {
	m *memberlist.Memberlist
	t *transport
	d *delegate
}

func config(s setting, name string, t *transport, d *delegate, key []byte) *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	c.Name = name
	c.Transport = t
	c.BindAddr = t.ip.String()
	c.BindPort = bindPort
	c.AdvertisePort = bindPort
	c.ProtocolVersion = s.protocol
	c.EnableCompression = s.compress
	c.SecretKey = key
	c.Delegate = d
	payload := "ack from " + name
	if name == "n3" {
		// 32 bytes or more: a str16 in msgpack.
		payload += ", who pads the payload past thirty-two bytes"
	}
	c.Ping = pinger{[]byte(payload)}
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 80 * time.Millisecond
	c.GossipInterval = 40 * time.Millisecond
	c.PushPullInterval = 1500 * time.Millisecond
	c.TCPTimeout = time.Second
	c.SuspicionMult = 2
	c.SuspicionMaxTimeoutMult = 2
	c.GossipToTheDeadTime = time.Second
	c.LogOutput = ioutil.Discard
	return c
}

func start(n *network, s setting, i int, key []byte) (*node, error) {
	name := fmt.Sprintf("n%d", i)
	ip := net.IPv4(10, 0, 0, byte(i+1)).To4()
	if s.ipv6 {
		ip = net.ParseIP(fmt.Sprintf("fd00::%d", i+1))
	}
	t := n.newTransport(name, ip, key, s.protocol)
	d := &delegate{name: name, large: s.large && i == 2, meta: []byte("role=" + name)}
	switch i {
	case 1:
		d.meta = []byte("role=n1, with metadata of 32 bytes or more")
	case 4:
		// No metadata and no user state: nil slices on the wire.
		d.meta, d.noState = nil, true
	}
	m, err := memberlist.Create(config(s, name, t, d, key))
	if err != nil {
		return nil, err
	}
	return &node{m: m, t: t, d: d}, nil
}

func waitFor(limit time.Duration, done func() bool) bool {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		if done() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return done()
}

func member(m *memberlist.Memberlist, name string) *memberlist.Node {
	for _, n := range m.Members() {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func run(s setting, rec *recorder) error {
	n := newNetwork(s.name, rec)
	var nodes []*node
	for i := 0; i < 5; i++ {
		nd, err := start(n, s, i, s.key)
		if err != nil {
			return err
		}
		nodes = append(nodes, nd)
	}
	defer func() {
		for _, nd := range nodes {
			nd.m.Shutdown()
		}
	}()
	seed := nodes[0].t.addr
	for _, nd := range nodes[1:] {
		if _, err := nd.m.Join([]string{seed}); err != nil {
			return fmt.Errorf("join: %v", err)
		}
	}
	if !waitFor(5*time.Second, func() bool {
		for _, nd := range nodes {
			if nd.m.NumMembers() != len(nodes) {
				return false
			}
		}
		return true
	}) {
		return errors.New("no convergence")
	}

	// Pings through the API, to move every node's sequence numbers past
	// what a positive fixint holds: n0..n2 to a uint8, n3 and n4 to a
	// uint16.
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Add(1)
		go func(i int, nd *node) {
			defer wg.Done()
			peer := nodes[(i+1)%len(nodes)]
			to := &net.UDPAddr{IP: peer.t.ip, Port: bindPort}
			for j := 0; j < 180+40*i; j++ {
				nd.m.Ping(peer.m.LocalNode().Name, to)
			}
		}(i, nd)
	}
	wg.Wait()

	// User messages: best effort (a datagram), reliable (a stream), and
	// gossiped by the delegate (piggybacked in a compound).
	n1, n2, n3, n4 := nodes[1], nodes[2], nodes[3], nodes[4]
	if err := n1.m.SendBestEffort(member(n1.m, "n2"), []byte("best effort from n1")); err != nil {
		return err
	}
	if err := n1.m.SendReliable(member(n1.m, "n3"), []byte("reliable from n1")); err != nil {
		return err
	}
	n1.d.mu.Lock()
	n1.d.out = append(n1.d.out, []byte("gossip from n1"))
	n1.d.mu.Unlock()

	// New metadata: an alive at a higher incarnation.
	n2.d.mu.Lock()
	// 256 bytes or more: still a str16 (go-msgpack never writes str8).
	n2.d.meta = bytes.Repeat([]byte("role=n2,updated;"), 20)
	n2.d.mu.Unlock()
	if err := n2.m.UpdateNode(time.Second); err != nil {
		// Only a timeout waiting for the broadcast to go out: it still
		// goes out, and a missing kind fails the run at the end.
		fmt.Fprintf(os.Stderr, "%s: update: %v\n", s.name, err)
	}

	// n1's datagrams to n2 are lost: n1 probes n2 indirectly (the relays'
	// acks come back) and by the fallback ping over a stream. Periodic
	// push-pulls happen meanwhile.
	n.block("n1", "n2", true)
	time.Sleep(2500 * time.Millisecond)
	n.block("n1", "n2", false)

	// n4 crashes: pings, indirect pings and nacks, suspicion, death.
	n4.t.kill()
	n4.m.Shutdown()
	if !waitFor(10*time.Second, func() bool {
		for _, nd := range nodes[:4] {
			if member(nd.m, "n4") != nil {
				return false
			}
		}
		return true
	}) {
		return errors.New("n4 not declared dead")
	}

	// n3 leaves gracefully.
	if err := n3.m.Leave(time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "%s: leave: %v\n", s.name, err)
	}
	n3.m.Shutdown()
	waitFor(3*time.Second, func() bool { return member(nodes[0].m, "n3") == nil })
	time.Sleep(500 * time.Millisecond)

	// An intruder with the other encryption setting tries to join: n0
	// answers with an error.
	var ikey []byte
	if s.key == nil {
		ikey = intruderKey
	}
	in, err := start(n, s, 98, ikey)
	if err != nil {
		return err
	}
	if _, err := in.m.Join([]string{seed}); err == nil {
		return errors.New("the intruder joined")
	}
	in.t.kill()
	in.m.Shutdown()
	return nil
}

// ---------------------------------------------------------------------
// Classification: what a recording holds, in the vocabulary of the
// manifest (see README.md).

type goPing struct {
	SeqNo      uint32
	Node       string
	SourceAddr []byte
	SourcePort uint16
	SourceNode string
}
type goAck struct {
	SeqNo   uint32
	Payload []byte
}
type goAlive struct {
	Incarnation uint32
	Node        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Vsn         []uint8
}
type goDead struct {
	Incarnation uint32
	Node        string
	From        string
}
type goCompress struct {
	Algo uint8
	Buf  []byte
}
type goPushPullHeader struct {
	Nodes        int
	UserStateLen int
	Join         bool
}
type goPushNodeState struct {
	Name        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Incarnation uint32
	State       int
	Vsn         []uint8
}
type goErr struct{ Error string }

func decodeInto(r io.Reader, v interface{}) error {
	return codec.NewDecoder(r, &codec.MsgpackHandle{}).Decode(v)
}

func decrypt(key, payload, aad []byte) ([]byte, string, error) {
	if len(payload) < 1+12+16 {
		return nil, "", errors.New("short payload")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, "", err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, "", err
	}
	plain, err := gcm.Open(nil, payload[1:13], payload[13:], aad)
	if err != nil {
		return nil, "", err
	}
	switch payload[0] {
	case 0:
		if len(plain) == 0 || int(plain[len(plain)-1]) > len(plain) {
			return nil, "", errors.New("bad padding")
		}
		return plain[:len(plain)-int(plain[len(plain)-1])], "aes-v0", nil
	case 1:
		return plain, "aes-v1", nil
	}
	return nil, "", fmt.Errorf("encryption version %d", payload[0])
}

func inflate(c goCompress) ([]byte, error) {
	if c.Algo != 0 {
		return nil, fmt.Errorf("algorithm %d", c.Algo)
	}
	r := lzw.NewReader(bytes.NewReader(c.Buf), lzw.LSB, 8)
	defer r.Close()
	return ioutil.ReadAll(r)
}

type kinds map[string]bool

func (k kinds) list() string {
	var out []string
	for s := range k {
		out = append(out, s)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// command classifies one datagram command: a message, a compound or a
// compressed layer.
func command(buf []byte, k kinds, depth int) error {
	if len(buf) == 0 || depth > 4 {
		return errors.New("empty or deep command")
	}
	body := buf[1:]
	switch buf[0] {
	case compoundMsg:
		k["compound"] = true
		if len(body) < 1 {
			return errors.New("short compound")
		}
		count := int(body[0])
		if len(body) < 1+2*count {
			return errors.New("short compound table")
		}
		data := body[1+2*count:]
		for i := 0; i < count; i++ {
			l := int(binary.BigEndian.Uint16(body[1+2*i:]))
			if l > len(data) {
				return errors.New("truncated compound")
			}
			if err := command(data[:l], k, depth+1); err != nil {
				return err
			}
			data = data[l:]
		}
	case compressMsg:
		k["lzw"] = true
		var c goCompress
		if err := decodeInto(bytes.NewReader(body), &c); err != nil {
			return err
		}
		inner, err := inflate(c)
		if err != nil {
			return err
		}
		return command(inner, k, depth+1)
	case pingMsg:
		k["ping"] = true
		var p goPing
		return decodeInto(bytes.NewReader(body), &p)
	case indirectPingMsg:
		k["indirect-ping"] = true
	case ackRespMsg:
		k["ack"] = true
		var a goAck
		if err := decodeInto(bytes.NewReader(body), &a); err != nil {
			return err
		}
		if len(a.Payload) > 0 {
			k["ack-payload"] = true
		}
	case nackRespMsg:
		k["nack"] = true
	case suspectMsg:
		k["suspect"] = true
	case aliveMsg:
		k["alive"] = true
		var a goAlive
		if err := decodeInto(bytes.NewReader(body), &a); err != nil {
			return err
		}
		if len(a.Meta) > 0 {
			k["meta"] = true
		}
	case deadMsg:
		k["dead"] = true
		var d goDead
		if err := decodeInto(bytes.NewReader(body), &d); err != nil {
			return err
		}
		if d.Node == d.From {
			k["leave"] = true
		}
	case userMsg:
		k["user"] = true
	default:
		return fmt.Errorf("message type %d in a datagram", buf[0])
	}
	return nil
}

func classifyDatagram(r *record) (kinds, error) {
	k := kinds{}
	buf := r.buf
	if r.key != nil {
		plain, v, err := decrypt(r.key, buf, nil)
		if err != nil {
			return nil, err
		}
		k[v] = true
		buf = plain
	}
	if len(buf) >= 5 && buf[0] == hasCrcMsg {
		if crc32.ChecksumIEEE(buf[5:]) != binary.BigEndian.Uint32(buf[1:5]) {
			return nil, errors.New("bad crc")
		}
		k["crc"] = true
		buf = buf[5:]
	}
	return k, command(buf, k, 0)
}

func classifyStream(r *record) (kinds, error) {
	k := kinds{}
	buf := r.buf
	if len(buf) == 0 {
		return nil, errors.New("empty stream")
	}
	if buf[0] == encryptMsg {
		if r.key == nil || len(buf) < 5 {
			return nil, errors.New("encrypted stream and no key")
		}
		l := int(binary.BigEndian.Uint32(buf[1:5]))
		if len(buf) != 5+l {
			return nil, fmt.Errorf("stream of %d bytes, header says %d", len(buf), 5+l)
		}
		plain, v, err := decrypt(r.key, buf[5:], buf[:5])
		if err != nil {
			return nil, err
		}
		k[v] = true
		buf = plain
	}
	if len(buf) > 0 && buf[0] == compressMsg {
		k["lzw"] = true
		var c goCompress
		if err := decodeInto(bytes.NewReader(buf[1:]), &c); err != nil {
			return nil, err
		}
		inner, err := inflate(c)
		if err != nil {
			return nil, err
		}
		buf = inner
	}
	if len(buf) == 0 {
		return nil, errors.New("empty message")
	}
	if len(buf) >= largeMessage {
		k["large"] = true
	}
	rd := bytes.NewReader(buf[1:])
	dec := codec.NewDecoder(rd, &codec.MsgpackHandle{})
	switch buf[0] {
	case pushPullMsg:
		var h goPushPullHeader
		if err := dec.Decode(&h); err != nil {
			return nil, err
		}
		if h.Join {
			k["push-pull-join"] = true
		} else {
			k["push-pull-sync"] = true
		}
		for i := 0; i < h.Nodes; i++ {
			var s goPushNodeState
			if err := dec.Decode(&s); err != nil {
				return nil, err
			}
			if len(s.Meta) > 0 {
				k["meta"] = true
			}
			k[[]string{"state-alive", "state-suspect", "state-dead", "state-left"}[s.State&3]] = true
		}
		if h.UserStateLen > 0 {
			k["user-state"] = true
		}
	case userMsg:
		k["stream-user"] = true
	case pingMsg:
		k["stream-ping"] = true
	case ackRespMsg:
		k["stream-ack"] = true
	case errMsg:
		var e goErr
		if err := dec.Decode(&e); err != nil {
			return nil, err
		}
		k["err"] = true
	default:
		return nil, fmt.Errorf("message type %d on a stream", buf[0])
	}
	return k, nil
}

// A stream message this long (decrypted and decompressed) is "large".
const largeMessage = 8192

// Every kind a complete run must produce; the recorder fails without one.
var expected = []string{
	"ping", "indirect-ping", "ack", "ack-payload", "nack", "suspect", "alive", "meta",
	"dead", "leave", "user", "compound", "crc", "lzw", "aes-v0", "aes-v1",
	"push-pull-join", "push-pull-sync", "user-state", "state-alive", "state-dead", "state-left",
	"stream-user", "stream-ping", "stream-ack", "err", "large",
}

func main() {
	out := flag.String("out", "", "directory to write the recordings and manifest.txt to")
	perKind := flag.Int("per-kind", 1, "recordings kept per distinct (setting, direction, kinds)")
	only := flag.String("settings", "", "comma-separated settings to run (default: all)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: memberlist-recorder -out DIR")
		os.Exit(2)
	}
	rec := &recorder{}
	for _, s := range settings {
		if *only != "" && !strings.Contains(","+*only+",", ","+s.name+",") {
			continue
		}
		fmt.Fprintf(os.Stderr, "recording %s\n", s.name)
		if err := run(s, rec); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
			os.Exit(1)
		}
	}
	// Give the last goroutines a moment, then freeze the recordings.
	time.Sleep(200 * time.Millisecond)
	rec.mu.Lock()
	records := rec.records
	rec.records = nil
	rec.mu.Unlock()

	var manifest bytes.Buffer
	manifest.WriteString("# Recorded by interop/memberlist-recorder from github.com/hashicorp/memberlist.\n")
	manifest.WriteString("# file PATH TRANSPORT key=HEX|- kinds=K,K,...\n")
	seen := map[string]int{}
	found := kinds{}
	written, total := 0, 0
	// Classify everything; keep the last recording of each kind set (the
	// latest have the largest sequence numbers), written in the order sent.
	classes := make([]kinds, len(records))
	keep := make([]bool, len(records))
	for i := len(records) - 1; i >= 0; i-- {
		r := records[i]
		if len(r.buf) == 0 {
			continue
		}
		var k kinds
		var err error
		if r.transport == "dgram" {
			k, err = classifyDatagram(r)
		} else {
			k, err = classifyStream(r)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s %s %s->%s: %v (%x)\n", r.setting, r.transport, r.from, r.to, err, r.buf)
			os.Exit(1)
		}
		sig := r.setting + " " + r.transport + r.dir + " " + k.list()
		if k["large"] {
			// One large recording per direction is plenty.
			sig = r.setting + " " + r.transport + r.dir + " large"
		}
		if seen[sig] >= *perKind {
			continue
		}
		seen[sig]++
		classes[i], keep[i] = k, true
	}
	for i, r := range records {
		if !keep[i] {
			continue
		}
		k := classes[i]
		for s := range k {
			found[s] = true
		}
		written++
		total += len(r.buf)
		label := r.transport
		if r.dir != "" {
			label += "-" + r.dir
		}
		name := fmt.Sprintf("%s/%03d-%s-%s-%s.bin", r.setting, written, label, r.from, r.to)
		path := filepath.Join(*out, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := ioutil.WriteFile(path, r.buf, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		keyHex := "-"
		if r.key != nil && (bytes.HasPrefix(r.buf, []byte{encryptMsg}) || r.transport == "dgram") {
			keyHex = hex.EncodeToString(r.key)
		}
		transport := "datagram"
		if r.transport == "stream" {
			transport = "stream"
		}
		fmt.Fprintf(&manifest, "file %s %s key=%s kinds=%s\n", name, transport, keyHex, k.list())
	}
	var missing []string
	for _, s := range expected {
		if !found[s] {
			missing = append(missing, s)
		}
	}
	fmt.Fprintf(&manifest, "expect %s\n", strings.Join(expected, " "))
	if err := ioutil.WriteFile(filepath.Join(*out, "manifest.txt"), manifest.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "%d recordings of %d kept, %d bytes\n", written, len(records), total)
	if len(missing) > 0 && *only == "" {
		fmt.Fprintf(os.Stderr, "kinds not produced: %s\n", strings.Join(missing, " "))
		os.Exit(1)
	}
}
