// Command memberlist-peer runs one real HashiCorp memberlist node on
// loopback, over the library's own NetTransport, and lets a test drive it:
// commands come in on stdin, one per line, and everything the node sees
// goes out on stdout as one JSON object per line. See README.md.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hashicorp/memberlist"
)

// ---------------------------------------------------------------------
// Output: one JSON object per line, written whole by one write call.

var outMu sync.Mutex

func emit(ev string, fields map[string]interface{}) {
	obj := map[string]interface{}{"ev": ev}
	for k, v := range fields {
		obj[k] = v
	}
	line, err := json.Marshal(obj)
	if err != nil {
		line = []byte(fmt.Sprintf(`{"ev":"error","msg":%q}`, err.Error()))
	}
	line = append(line, '\n')
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.Write(line)
}

func emitError(format string, args ...interface{}) {
	emit("error", map[string]interface{}{"msg": fmt.Sprintf(format, args...)})
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func stateName(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	}
	return fmt.Sprintf("state-%d", int(s))
}

// recordOf mirrors memberlist 0.2.2's nodeState, the record in which the
// library keeps each member: its Node first, then the incarnation, the
// state and the time of the last change. The library never fills
// Node.State (nodeState's own State field shadows it), so the state is
// read from the record around the Node.
type recordOf struct {
	memberlist.Node
	Incarnation uint32
	State       memberlist.NodeStateType
	StateChange time.Time
}

// stateOf is the state of a member, given a *Node the library handed out:
// a delegate's argument or an element of Members(), both of which point
// into the library's record. Node.State is taken when it is set (a
// library that fills it).
func stateOf(n *memberlist.Node) memberlist.NodeStateType {
	if n.State != memberlist.StateAlive {
		return n.State
	}
	return (*recordOf)(unsafe.Pointer(n)).State
}

// nodeFields describes a node: its name, address, state and metadata (as
// text, and as base64 for metadata that is not UTF-8).
func nodeFields(n *memberlist.Node, state memberlist.NodeStateType) map[string]interface{} {
	return map[string]interface{}{
		"name":     n.Name,
		"addr":     n.Address(),
		"state":    stateName(state),
		"meta":     string(n.Meta),
		"meta_b64": b64(n.Meta),
	}
}

// ---------------------------------------------------------------------
// Delegates.

// broadcast is one user message gossiped through Delegate.GetBroadcasts.
type broadcast struct{ msg []byte }

func (b *broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b *broadcast) Message() []byte                       { return b.msg }
func (b *broadcast) Finished()                             {}
func (b *broadcast) UniqueBroadcast()                      {}

type delegate struct {
	meta       []byte
	state      []byte
	ackPayload []byte
	queue      *memberlist.TransmitLimitedQueue

	// Members seen through the event delegate, dead and left ones too.
	mu    sync.Mutex
	known map[string]memberlist.Node
	// Ack payloads already reported, per member.
	acks map[string]string
}

func (d *delegate) NodeMeta(limit int) []byte { return d.meta }

func (d *delegate) NotifyMsg(msg []byte) {
	// memberlist does not tell the delegate who sent a user message.
	emit("user", map[string]interface{}{"msg": b64(msg)})
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(join bool) []byte { return d.state }

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	emit("remote_state", map[string]interface{}{"join": join, "state": b64(buf)})
}

// remember keeps a copy of a member as an event describes it, and returns
// its description. The library calls the event delegate with its node
// lock held, so the record is read safely.
func (d *delegate) remember(n *memberlist.Node) map[string]interface{} {
	c := *n
	c.Addr = append(net.IP(nil), n.Addr...)
	c.Meta = append([]byte(nil), n.Meta...)
	c.State = stateOf(n)
	d.mu.Lock()
	d.known[n.Name] = c
	d.mu.Unlock()
	return nodeFields(&c, c.State)
}

func (d *delegate) NotifyJoin(n *memberlist.Node) { emit("join", d.remember(n)) }

// NotifyLeave is called for a member found dead and for one that left
// (its dead message came from itself): the state, already updated when it
// is called, tells which.
func (d *delegate) NotifyLeave(n *memberlist.Node) { emit("leave", d.remember(n)) }

func (d *delegate) NotifyUpdate(n *memberlist.Node) { emit("update", d.remember(n)) }

func (d *delegate) AckPayload() []byte { return d.ackPayload }

// NotifyPingComplete reports a probed member's ack payload, once per member
// and distinct payload; empty payloads are not reported.
func (d *delegate) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	if len(payload) == 0 {
		return
	}
	p := b64(payload)
	d.mu.Lock()
	seen := d.acks[other.Name] == p
	d.acks[other.Name] = p
	d.mu.Unlock()
	if !seen {
		emit("ack_payload", map[string]interface{}{"name": other.Name, "payload": p})
	}
}

// ---------------------------------------------------------------------
// Commands.

type peer struct {
	list *memberlist.Memberlist
	del  *delegate
}

func (p *peer) join(addrs string) {
	n, err := p.list.Join(strings.Split(addrs, ","))
	if err != nil {
		emitError("join %s: %v", addrs, err)
		return
	}
	emit("joined", map[string]interface{}{"n": n})
}

func (p *peer) members(all bool) {
	var out []map[string]interface{}
	if all {
		p.del.mu.Lock()
		nodes := make([]memberlist.Node, 0, len(p.del.known))
		for _, n := range p.del.known {
			nodes = append(nodes, n)
		}
		p.del.mu.Unlock()
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
		for i := range nodes {
			out = append(out, nodeFields(&nodes[i], nodes[i].State))
		}
	} else {
		// Members() points into the library's records, read here without
		// its lock: a state changing meanwhile may be read either way.
		for _, n := range p.list.Members() {
			out = append(out, nodeFields(n, stateOf(n)))
		}
	}
	if out == nil {
		out = []map[string]interface{}{}
	}
	emit("members", map[string]interface{}{"members": out})
}

// target finds a live member by name, or takes host:port as an address.
func (p *peer) target(to string) (*memberlist.Node, error) {
	for _, n := range p.list.Members() {
		if n.Name == to {
			return n, nil
		}
	}
	host, port, err := net.SplitHostPort(to)
	if err != nil {
		return nil, fmt.Errorf("no live member named %q", to)
	}
	ip := net.ParseIP(host)
	pn, err := strconv.ParseUint(port, 10, 16)
	if ip == nil || err != nil {
		return nil, fmt.Errorf("no live member named %q, nor an ip:port", to)
	}
	return &memberlist.Node{Addr: ip, Port: uint16(pn)}, nil
}

func (p *peer) send(how, to, data string) {
	msg, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		emitError("%s: bad base64: %v", how, err)
		return
	}
	node, err := p.target(to)
	if err != nil {
		emitError("%s: %v", how, err)
		return
	}
	switch {
	case how == "send-reliable":
		err = p.list.SendReliable(node, msg)
	case node.Name == "":
		err = p.list.SendToAddress(memberlist.Address{Addr: node.Address()}, msg)
	default:
		err = p.list.SendBestEffort(node, msg)
	}
	if err != nil {
		emitError("%s %s: %v", how, to, err)
		return
	}
	emit("sent", map[string]interface{}{"to": to, "how": strings.TrimPrefix(how, "send-")})
}

func (p *peer) broadcast(data string) {
	msg, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		emitError("broadcast: bad base64: %v", err)
		return
	}
	p.del.queue.QueueBroadcast(&broadcast{msg: msg})
	emit("queued", map[string]interface{}{"n": p.del.queue.NumQueued()})
}

// quit stops the node without leaving and exits.
func (p *peer) quit(why string) {
	p.list.Shutdown()
	emit("shutdown", map[string]interface{}{"why": why})
	os.Exit(0)
}

func (p *peer) leave() {
	if err := p.list.Leave(2 * time.Second); err != nil {
		emitError("leave: %v", err)
	}
	p.list.Shutdown()
	emit("left", nil)
	os.Exit(0)
}

// command runs one line of stdin.
func (p *peer) command(line string) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return
	}
	args := fields[1:]
	arity := func(n int) bool {
		if len(args) != n {
			emitError("%s takes %d argument(s), got %d", fields[0], n, len(args))
			return false
		}
		return true
	}
	switch fields[0] {
	case "members":
		if len(args) == 1 && args[0] == "all" {
			p.members(true)
		} else if arity(0) {
			p.members(false)
		}
	case "join":
		if arity(1) {
			p.join(args[0])
		}
	case "send-best", "send-reliable":
		if arity(2) {
			p.send(fields[0], args[0], args[1])
		}
	case "broadcast":
		if arity(1) {
			p.broadcast(args[0])
		}
	case "leave":
		p.leave()
	case "quit":
		p.quit("quit")
	default:
		emitError("unknown command %q", fields[0])
	}
}

// ---------------------------------------------------------------------

func main() {
	name := flag.String("name", "", "node name (default: the host name)")
	bind := flag.String("bind", "127.0.0.1", "address (or address:port) to bind and advertise")
	port := flag.Int("port", 0, "port to bind when -bind has none (0: chosen by the OS)")
	join := flag.String("join", "", "host:port[,host:port...] to join once started")
	keyB64 := flag.String("key", "", "base64 encryption key (16, 24 or 32 bytes)")
	meta := flag.String("meta", "", "node metadata")
	state := flag.String("state", "", "local state sent in push-pulls")
	protocol := flag.Int("protocol", int(memberlist.DefaultLANConfig().ProtocolVersion), "protocol version")
	compress := flag.Bool("compress", memberlist.DefaultLANConfig().EnableCompression, "compress messages")
	fast := flag.Bool("fast", false, "short timers for tests (see README.md)")
	ackPayload := flag.String("ack-payload", "", "payload of this node's acks")
	lifetime := flag.Float64("lifetime", 120, "seconds after which the process shuts down by itself")
	verbose := flag.Bool("log", true, "memberlist's log on stderr")
	flag.Parse()

	fail := func(format string, args ...interface{}) {
		emitError(format, args...)
		os.Exit(2)
	}
	if flag.NArg() != 0 {
		fail("unexpected arguments: %v", flag.Args())
	}

	conf := memberlist.DefaultLANConfig()
	if *name != "" {
		conf.Name = *name
	}
	host, bindPort := *bind, *port
	if h, ps, err := net.SplitHostPort(*bind); err == nil {
		pn, err := strconv.ParseUint(ps, 10, 16)
		if err != nil {
			fail("-bind: bad port %q", ps)
		}
		host, bindPort = h, int(pn)
	}
	// Port 0: NetTransport binds an OS-chosen port, and Create sets
	// BindPort and AdvertisePort to it.
	conf.BindAddr = host
	conf.BindPort = bindPort
	conf.AdvertiseAddr = host
	conf.AdvertisePort = bindPort
	conf.ProtocolVersion = uint8(*protocol)
	conf.EnableCompression = *compress
	if *keyB64 != "" {
		key, err := base64.StdEncoding.DecodeString(*keyB64)
		if err != nil {
			fail("-key: %v", err)
		}
		conf.SecretKey = key
	}
	if *fast {
		conf.ProbeInterval = 200 * time.Millisecond
		conf.ProbeTimeout = 100 * time.Millisecond
		conf.GossipInterval = 50 * time.Millisecond
		conf.PushPullInterval = 2 * time.Second
		conf.SuspicionMult = 4
		conf.TCPTimeout = 2 * time.Second
	}
	if *verbose {
		conf.Logger = log.New(os.Stderr, conf.Name+" ", log.Lmicroseconds)
	} else {
		conf.LogOutput = io.Discard
	}
	if len(*meta) > memberlist.MetaMaxSize {
		fail("-meta: %d bytes, at most %d", len(*meta), memberlist.MetaMaxSize)
	}

	var list atomic.Pointer[memberlist.Memberlist]
	del := &delegate{
		meta:       []byte(*meta),
		state:      []byte(*state),
		ackPayload: []byte(*ackPayload),
		known:      map[string]memberlist.Node{},
		acks:       map[string]string{},
		queue: &memberlist.TransmitLimitedQueue{
			NumNodes: func() int {
				if l := list.Load(); l != nil {
					return l.NumMembers()
				}
				return 1
			},
			RetransmitMult: conf.RetransmitMult,
		},
	}
	if *meta == "" {
		del.meta = nil
	}
	if *state == "" {
		del.state = nil
	}
	if *ackPayload == "" {
		del.ackPayload = nil
	}
	conf.Delegate = del
	conf.Events = del
	conf.Ping = del

	l, err := memberlist.Create(conf)
	if err != nil {
		fail("create: %v", err)
	}
	list.Store(l)
	p := &peer{list: l, del: del}
	local := l.LocalNode()
	emit("ready", map[string]interface{}{"name": local.Name, "port": local.Port, "addr": local.Address()})

	time.AfterFunc(time.Duration(*lifetime*float64(time.Second)), func() { p.quit("lifetime") })

	if *join != "" {
		p.join(*join)
	}

	lines := make(chan string)
	go func() {
		in := bufio.NewScanner(os.Stdin)
		in.Buffer(make([]byte, 64*1024), 16*1024*1024)
		for in.Scan() {
			lines <- in.Text()
		}
		if err := in.Err(); err != nil {
			emitError("stdin: %v", err)
		}
		close(lines)
	}()
	for line := range lines {
		p.command(line)
	}
	p.quit("eof")
}
