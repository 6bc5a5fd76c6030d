// Package sls is sluice-agent's Log Service output: it turns pipeline
// Batches into LogGroups and sends them with PutLogs
// (POST /logstores/{logstore}/shards/lb), signed (v1 or v4) and compressed
// (raw-block lz4 by default), to sluice-server or any Log Service endpoint.
//
// # Flow
//
//	Consume ─► groups (one open LogGroup per topic/source/tags) ─► queue ─► senders ─► server
//	                                                                           │  ▲
//	                                                          retryable failure▼  │ replay, in order
//	                                                                        disk buffer
//
// Consume encodes a batch's events straight into the open group of its
// topic/source/tags (no intermediate copy; the batch can be reused as soon
// as Consume returns) and blocks while more than MaxQueueBytes wait to be
// sent — that is the back-pressure that pauses inputs. A group is sealed when
// it reaches MaxGroupBytes/MaxGroupLogs or FlushInterval; sealing adds the
// __pack_id__ tag (<prefix>-<seq>, both upper-case hex: a random prefix per
// output instance and a sequence number).
//
// Senders compress and sign a sealed group and POST it, with up to
// MaxConcurrency requests in flight; the actual limit adapts (AIMD): it
// grows by one per limit successes and halves when the server throttles
// (403 quota codes, 429, 503, timeouts).
//
// # Outcomes (and acks)
//
// A batch is acked once every group holding its events has an outcome:
//   - 200: Done(nil).
//   - Network errors, 5xx, quota, auth (401/403) and 404 are retried with
//     exponential backoff. RequestTimeExpired corrects the clock from the
//     server's x-log-time (as it does on every response) and retries.
//     With a disk buffer, a group still failing after AttemptsBeforeBuffer
//     attempts is written there (fsynced) and acked Done(nil); groups sealed
//     while the buffer holds data follow it there, so delivery stays in
//     order. A replayer sends the buffered groups, oldest first, retrying
//     forever, also after a restart. Without a buffer the sender retries in
//     memory; the queue fills and Consume blocks.
//   - A disk that refuses a group (full, I/O errors): the group stays in
//     memory, unacked, and its sender waits — for the buffer to take it
//     (when delivered segments or others free space), for the buffer to
//     drain (then it is sent directly), or for the server while the
//     buffer is empty. The queue fills and Consume blocks, as without a
//     buffer; nothing fails in a loop and flow resumes by itself.
//   - PostBodyTooLarge (a server limit below MaxGroupBytes): the group is
//     split in two halves, each with its own pack id, recursively.
//   - Any other 4xx (PostBodyInvalid, InvalidTimestamp, InvalidKey...)
//     is permanent: the encoded LogGroup and the error go to DeadLetterDir
//     (fsynced), the dead-letter metric counts it, an error is logged, and
//     the batch is acked Done(nil). If even the dead-letter write fails it is
//     retried; nothing is dropped.
//   - Shutdown whose deadline passes before delivery: undelivered groups go
//     to the disk buffer when there is one, else are acked with the error
//     (the input does not advance its checkpoint, so they are read again).
//
// The disk buffer (agent/buffer) is integrated here rather than wrapped
// around the output as a Consumer because what it stores is the sender's
// product — compressed, pack-id-tagged request bodies — and because the
// decision to spill depends on the send outcome.
package sls

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicelog/sluice/agent/buffer"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/protocol"
)

// PackIDTag is the LogGroup tag identifying a package from one agent.
const PackIDTag = "__pack_id__"

// shutdownGrace is how long, after Shutdown's deadline, undelivered groups
// may still be written to the disk buffer.
const shutdownGrace = 2 * time.Second

// errShutdown is returned by Consume once Shutdown started.
var errShutdown = errors.New("sls output: shutting down")

// group is one LogGroup being built, then sent.
type group struct {
	key  string
	raw  []byte // encoded logs, then (sealed) the group metadata and pack id
	meta []byte // encoded topic/source/tags, appended at seal
	logs int
	acks []pipeline.Ack
	born time.Time
	// packID is the __pack_id__ value, set at seal.
	packID string
}

// Output is the Log Service output. It implements pipeline.Consumer.
type Output struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	ct     protocol.CompressType
	source string
	snd    *sender
	buf    *buffer.Buffer // nil without BufferDir
	quota  *buffer.Quota  // shared with the agent's other outputs; nil: own
	m      *metrics

	packPrefix string
	packSeq    atomic.Uint64

	mu     sync.Mutex
	open   map[string]*group
	keyBuf []byte
	queue  []*group
	qBytes int
	// openBytes is the encoded size of the open groups' logs; it counts
	// against MaxQueueBytes with qBytes.
	openBytes int
	changed   chan struct{} // closed and replaced when queue state changes
	closing   bool
	started   bool

	runCtx    context.Context // senders' context; cancelled when Shutdown gives up
	runCancel context.CancelFunc
	wg        sync.WaitGroup // senders, flusher
	replayWG  sync.WaitGroup
	replayCtx context.Context
	replayEnd context.CancelFunc
	shutdown  sync.Once
	shutErr   error
	// grace bounds disk buffer writes after Shutdown's deadline passed.
	grace atomic.Pointer[context.Context]

	// free holds group buffers for reuse. A channel rather than a
	// sync.Pool: at hundreds of MB/s the GC runs often enough to empty a
	// pool between uses, and regrowing a multi-MB buffer costs more than
	// the encoding itself.
	free chan []byte
}

// New returns an output for cfg. The disk buffer (when configured) is
// opened by Start.
func New(cfg Config, set Settings) (*Output, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ct, _ := cfg.compressType()
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("output", "sls", "project", cfg.Project, "logstore", cfg.Logstore)
	now := set.Now
	if now == nil {
		now = time.Now
	}
	source := cfg.Source
	if source == "" {
		source = localIP()
	}
	var prefix [8]byte
	_, _ = rand.Read(prefix[:]) // crypto/rand.Read never fails on supported platforms
	m := newMetrics(set.Registerer, cfg.Project, cfg.Logstore)
	snd, err := newSender(&cfg, set.Transport, set.SendRate, now, log, m)
	if err != nil {
		return nil, err
	}
	o := &Output{
		quota:      set.BufferQuota,
		cfg:        cfg,
		log:        log,
		now:        now,
		ct:         ct,
		source:     source,
		snd:        snd,
		m:          m,
		packPrefix: strings.ToUpper(hex.EncodeToString(prefix[:])),
		open:       map[string]*group{},
		changed:    make(chan struct{}),
		free:       make(chan []byte, 2*cfg.MaxConcurrency+2),
	}
	o.runCtx, o.runCancel = context.WithCancel(context.Background())
	o.replayCtx, o.replayEnd = context.WithCancel(context.Background())
	return o, nil
}

// localIP is the first non-loopback IPv4 address, the __source__ Logtail
// reports; "127.0.0.1" when there is none.
func localIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// Start opens the disk buffer and starts the senders, the flusher and (with
// a buffer) the replayer.
func (o *Output) Start(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closing {
		return errors.New("sls output: Start after Shutdown")
	}
	if o.started {
		return nil
	}
	if o.cfg.BufferDir != "" {
		b, err := buffer.Open(buffer.Config{Dir: o.cfg.BufferDir, MaxFiles: o.cfg.BufferMaxFiles, MaxFileSize: o.cfg.BufferMaxFileSize},
			buffer.Settings{Logger: o.log, Registerer: o.m.reg, Quota: o.quota})
		if err != nil {
			return fmt.Errorf("sls output: %w", err)
		}
		o.buf = b
		o.replayWG.Add(1)
		go o.replay()
	}
	o.started = true
	for range o.cfg.MaxConcurrency {
		o.wg.Add(1)
		go o.sendLoop()
	}
	o.wg.Add(1)
	go o.flushLoop()
	// Every package this run sends carries the prefix: duplicates found at
	// the server can be traced to the agent run that sent them.
	o.log.Info("sls output started", "pack_id_prefix", o.packPrefix)
	return nil
}

// broadcast wakes every waiter; o.mu held.
func (o *Output) broadcast() {
	close(o.changed)
	o.changed = make(chan struct{})
}

// Consume encodes b's events into LogGroups and returns; b is acked once
// they are delivered (see the package documentation for what counts). It
// blocks while the send queue is full.
func (o *Output) Consume(ctx context.Context, b *pipeline.Batch) error {
	o.mu.Lock()
	for {
		if o.closing {
			o.mu.Unlock()
			return errShutdown
		}
		if !o.started {
			o.mu.Unlock()
			return errors.New("sls output: Consume before Start")
		}
		if o.qBytes+o.openBytes < o.cfg.MaxQueueBytes {
			break
		}
		// Over the bound: hand what is collecting to the senders now (a
		// sealed group can leave the queue; an open one would only wait for
		// the flush timer), then wait for the queue to drain.
		for _, g := range o.open {
			o.seal(g)
		}
		ch := o.changed
		o.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		o.mu.Lock()
	}
	if len(b.Events) == 0 {
		o.mu.Unlock()
		if b.Ack != nil {
			b.Ack.Done(nil)
		}
		return nil
	}
	source := b.Source
	if source == "" {
		source = o.source
	}
	g := o.openGroup(b, source)
	reserve(g, b.Size()+16*len(b.Events), o.cfg.MaxGroupBytes)
	var parts []*group // groups holding some of b's events
	for i := range b.Events {
		e := &b.Events[i]
		size := protocol.LogKVSize(e.Time, e.TimeNs != 0, e.Fields)
		if g.logs > 0 && (len(g.raw)+len(g.meta)+size+64 > o.cfg.MaxGroupBytes || g.logs >= o.cfg.MaxGroupLogs) {
			parts = append(parts, g)
			o.seal(g)
			g = o.openGroup(b, source)
		}
		n := len(g.raw)
		g.raw = protocol.AppendLogKV(g.raw, e.Time, e.TimeNs, e.TimeNs != 0, e.Fields)
		o.openBytes += len(g.raw) - n
		g.logs++
	}
	parts = append(parts, g)
	if b.Ack != nil {
		ack := b.Ack
		if len(parts) > 1 {
			ack = newSharedAck(ack, len(parts))
		}
		for _, p := range parts {
			p.acks = append(p.acks, ack)
		}
	}
	if len(g.raw)+len(g.meta) >= o.cfg.MaxGroupBytes || g.logs >= o.cfg.MaxGroupLogs {
		o.seal(g)
	}
	o.mu.Unlock()
	return nil
}

// reserve makes room for about n more bytes in g.raw, doubling (append
// grows large slices by 1.25x, which copies a multi-MB group many times
// over) and never beyond what a group can hold.
func reserve(g *group, n, maxBytes int) {
	need := len(g.raw) + n
	if need <= cap(g.raw) {
		return
	}
	c := min(max(need, 2*cap(g.raw)), maxBytes+maxBytes/8)
	if c <= cap(g.raw) {
		return
	}
	nb := make([]byte, len(g.raw), c)
	copy(nb, g.raw)
	g.raw = nb
}

// openGroup returns the open group for b's topic/source/tags, creating it;
// o.mu held.
func (o *Output) openGroup(b *pipeline.Batch, source string) *group {
	k := append(o.keyBuf[:0], b.Topic...)
	k = append(k, 0)
	k = append(k, source...)
	for _, t := range b.Tags {
		k = append(k, 0)
		k = append(k, t.Key...)
		k = append(k, 1)
		k = append(k, t.Value...)
	}
	o.keyBuf = k
	if g, ok := o.open[string(k)]; ok {
		return g
	}
	g := &group{key: string(k), born: o.now()}
	select {
	case buf := <-o.free:
		g.raw = buf[:0]
	default:
		g.raw = make([]byte, 0, 64<<10)
	}
	g.meta = protocol.AppendLogGroupMetaKV(nil, "", b.Topic, source, "", b.Tags)
	o.open[g.key] = g
	return g
}

// seal closes g: appends its metadata and pack id and queues it; o.mu held.
func (o *Output) seal(g *group) {
	delete(o.open, g.key)
	o.openBytes -= len(g.raw)
	g.raw = append(g.raw, g.meta...)
	g.packID = fmt.Sprintf("%s-%X", o.packPrefix, o.packSeq.Add(1)-1)
	g.raw = protocol.AppendLogGroupMetaKV(g.raw, "", "", "", "", []protocol.LogTag{{Key: PackIDTag, Value: g.packID}})
	g.meta = nil
	o.queue = append(o.queue, g)
	o.qBytes += len(g.raw)
	o.m.queueBytes.Set(float64(o.qBytes))
	o.broadcast()
}

// flushLoop seals groups older than FlushInterval.
func (o *Output) flushLoop() {
	defer o.wg.Done()
	t := time.NewTicker(max(o.cfg.FlushInterval/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-o.runCtx.Done():
			return
		}
		o.mu.Lock()
		if o.closing {
			o.mu.Unlock()
			return
		}
		now := o.now()
		for _, g := range o.open {
			if now.Sub(g.born) >= o.cfg.FlushInterval {
				o.seal(g)
			}
		}
		o.mu.Unlock()
	}
}

// next waits for a sealed group; nil when the output is closing and the
// queue is drained.
func (o *Output) next() *group {
	o.mu.Lock()
	defer o.mu.Unlock()
	for len(o.queue) == 0 {
		if o.closing {
			return nil
		}
		ch := o.changed
		o.mu.Unlock()
		<-ch
		o.mu.Lock()
	}
	g := o.queue[0]
	o.queue[0] = nil
	o.queue = o.queue[1:]
	o.qBytes -= len(g.raw)
	o.m.queueBytes.Set(float64(o.qBytes))
	o.broadcast()
	return g
}

func (o *Output) sendLoop() {
	defer o.wg.Done()
	var w worker
	for {
		g := o.next()
		if g == nil {
			return
		}
		o.deliver(g, &w)
	}
}

// deliver takes g to an outcome and acks it.
// worker is a sender goroutine's reusable state.
type worker struct {
	comp protocol.Compressor
	body []byte // compressed request body
}

func (o *Output) deliver(g *group, w *worker) {
	err := o.deliverRaw(g.raw, g.logs, g.packID, w)
	o.ackAll(g, err)
	o.release(g)
}

// deliverRaw takes one encoded LogGroup to an outcome: nil once delivered,
// buffered or dead-lettered.
func (o *Output) deliverRaw(raw []byte, logs int, packID string, w *worker) error {
	ctx := o.runCtx
	ct := o.ct
	body, err := w.comp.Append(w.body[:0], raw, ct)
	if err != nil { // unreachable for the validated types; send uncompressed rather than fail
		o.log.Error("compression failed; sending uncompressed", "err", err)
		ct, body = protocol.CompressNone, append(w.body[:0], raw...)
	}
	w.body = body
	p := &payload{body: body, rawSize: len(raw), ct: ct, logs: logs, packID: packID}
	if o.buf != nil && !o.buf.Empty() {
		// Older groups wait in the buffer: queue behind them.
		if err := o.spill(p); !errors.Is(err, errBufferUnwritable) {
			return err
		}
		// The buffer drained while the disk refused this group: nothing
		// is left to keep order behind, so it is sent directly.
	}
	for attempts := 1; ; attempts++ {
		serr := o.snd.send(ctx, p)
		switch {
		case serr == nil:
			return nil
		case serr.permanent:
			if halves := o.splitTooLarge(serr, raw); halves != nil {
				var first error
				for _, h := range halves {
					if err := o.deliverRaw(h.raw, h.logs, h.packID, w); first == nil {
						first = err
					}
				}
				return first
			}
			return o.deadLetter(ctx, raw, logs, packID, serr)
		case ctx.Err() != nil: // Shutdown gave up waiting
			if o.buf != nil {
				if err := o.spill(p); !errors.Is(err, errBufferUnwritable) {
					return err
				}
			}
			return fmt.Errorf("sls output: shut down before delivery: %w", serr)
		case o.buf != nil && attempts >= o.cfg.AttemptsBeforeBuffer:
			if err := o.spill(p); !errors.Is(err, errBufferUnwritable) {
				return err
			}
			// The disk refuses the group and the buffer is empty: keep
			// it in memory and go on trying the server (and the disk,
			// after each failure). The sender is busy meanwhile, so the
			// queue fills and Consume blocks: the inputs pause.
		}
		_ = o.snd.backoff(ctx, attempts) // a cancelled ctx takes the shutdown case next
	}
}

// part is one half of a split LogGroup.
type part struct {
	raw    []byte
	logs   int
	packID string
}

// splitTooLarge splits raw in two when the service refused it as too large
// (its limit can be below MaxGroupBytes) and it has more than one log; nil
// otherwise. Each half gets its own pack id.
func (o *Output) splitTooLarge(serr *sendError, raw []byte) []part {
	if serr.code != protocol.CodePostBodyTooLarge {
		return nil
	}
	var g protocol.LogGroup
	if err := g.Unmarshal(raw); err != nil || len(g.Logs) < 2 {
		return nil
	}
	o.log.Warn("the service refused a LogGroup as too large; sending it in two halves (lower max_group_bytes)", "logs", len(g.Logs), "bytes", len(raw))
	o.m.splits.Inc()
	half := len(g.Logs) / 2
	var out []part
	for _, logs := range [][]protocol.Log{g.Logs[:half], g.Logs[half:]} {
		h := g
		h.Logs = logs
		h.LogTags = make([]protocol.LogTag, 0, len(g.LogTags))
		id := fmt.Sprintf("%s-%X", o.packPrefix, o.packSeq.Add(1)-1)
		for _, t := range g.LogTags {
			if t.Key == PackIDTag {
				t.Value = id
			}
			h.LogTags = append(h.LogTags, t)
		}
		out = append(out, part{raw: protocol.AppendLogGroup(nil, &h), logs: len(logs), packID: id})
	}
	return out
}

func (o *Output) release(g *group) {
	if cap(g.raw) <= 2*o.cfg.MaxGroupBytes {
		select {
		case o.free <- g.raw[:0]:
		default:
		}
	}
	g.raw = nil
}

func (o *Output) ackAll(g *group, err error) {
	for _, a := range g.acks {
		a.Done(err)
	}
	g.acks = nil
}

// errBufferUnwritable: the disk refused a group and the buffer holds
// nothing it would have to queue behind.
var errBufferUnwritable = errors.New("sls output: the disk buffer cannot be written")

// Waits between attempts to write a group the disk refused. Delivered
// segments freeing space end a wait at once (buffer.Changed); the timer is
// for space freed by others.
const (
	bufferRetryInitial = 100 * time.Millisecond
	bufferRetryMax     = 2 * time.Second
)

// spill writes p to the disk buffer; nil means durable. While the disk
// refuses it (full, I/O errors; the buffer logs and counts them) spill
// keeps the group and waits, trying again whenever the buffer changes and
// at least every bufferRetryMax: the sender is held, the queue fills and
// Consume blocks, so the inputs pause and their files keep the data —
// nothing is acknowledged that is not on disk or delivered. It returns
// errBufferUnwritable (wrapping the cause) once the buffer is empty, so the
// caller can send the group directly, and an error when Shutdown's grace
// period ends.
func (o *Output) spill(p *payload) error {
	ctx := o.runCtx
	if ctx.Err() != nil {
		// Shutdown gave up waiting: still write what fits, within one
		// shared grace period (a full buffer must not hold Shutdown for a
		// timeout per queued group).
		ctx = context.Background()
		if g := o.grace.Load(); g != nil {
			ctx = *g
		}
	}
	rec := p.appendRecord(nil)
	wait := bufferRetryInitial
	for {
		changed := o.buf.Changed()
		err := o.buf.Append(ctx, rec)
		if err == nil {
			o.m.buffered.Inc()
			return nil
		}
		if !errors.Is(err, buffer.ErrUnwritable) {
			return fmt.Errorf("sls output: write to disk buffer: %w", err)
		}
		if o.buf.Empty() {
			return fmt.Errorf("%w: %w", errBufferUnwritable, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("sls output: write to disk buffer: %w", err)
		}
		t.Stop()
		wait = min(2*wait, bufferRetryMax)
	}
}

// replay sends buffered groups, oldest first, until Shutdown: one at a time
// by default, so they arrive in order; with ReplayConcurrency > 1 several at
// a time (a backlog drains faster over high-latency links, arrival order may
// interleave). Commits are strictly in order either way: a record is
// confirmed only when it and every record before it were delivered, and
// after a restart what was in flight is sent again (at-least-once).
func (o *Output) replay() {
	defer o.replayWG.Done()
	ctx := o.replayCtx
	type item struct {
		rec  buffer.Record
		done chan bool
	}
	// The committer holds one item while the channel holds the rest: at
	// most ReplayConcurrency sends in flight, one (strictly sequential) by
	// default.
	window := make(chan *item, o.cfg.ReplayConcurrency-1)
	var committer, senders sync.WaitGroup
	committer.Add(1)
	go func() {
		defer committer.Done()
		failed := false
		for it := range window {
			ok := <-it.done
			if !ok || failed {
				failed = true
				continue
			}
			if err := o.buf.Commit(it.rec); err != nil {
				failed = true
			}
		}
	}()
	readFailing := false
	for attempt := 1; ; attempt++ {
		rec, err := o.buf.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, buffer.ErrClosed) {
				break
			}
			// A read error must not end the replay: the buffer would
			// never drain and new groups would queue behind it forever.
			if !readFailing {
				readFailing = true
				o.log.Error("cannot read the disk buffer; retrying", "err", err)
			}
			if o.snd.backoff(ctx, attempt) != nil {
				break
			}
			continue
		}
		if readFailing {
			readFailing = false
			o.log.Info("disk buffer readable again")
		}
		attempt = 0
		it := &item{rec: rec, done: make(chan bool, 1)}
		select {
		case window <- it:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			it.done <- false // no sender for it (harmless if never queued)
			break
		}
		senders.Add(1)
		go func() {
			defer senders.Done()
			p, err := decodeRecord(it.rec.Data)
			if err != nil {
				// The CRC matched, so this is a record from an incompatible
				// version: keep it for a human rather than drop it.
				it.done <- o.deadLetter(ctx, it.rec.Data, 0, "", fmt.Errorf("undecodable disk buffer record: %w", err)) == nil
				return
			}
			it.done <- o.replayOne(ctx, p)
		}()
	}
	senders.Wait()
	close(window)
	committer.Wait()
}

// replayOne sends p until it has an outcome; false when ctx ended first.
func (o *Output) replayOne(ctx context.Context, p *payload) bool {
	for attempt := 1; ; attempt++ {
		serr := o.snd.send(ctx, p)
		if serr == nil {
			o.m.replayed.Inc()
			return true
		}
		if serr.permanent {
			raw, err := protocol.Decompress(nil, p.body, p.ct, p.rawSize, 0)
			if err != nil {
				raw = p.body
			} else if halves := o.splitTooLarge(serr, raw); halves != nil {
				for _, h := range halves {
					body, err := protocol.AppendCompressed(nil, h.raw, p.ct)
					if err != nil {
						return o.deadLetter(ctx, h.raw, h.logs, h.packID, err) == nil
					}
					if !o.replayOne(ctx, &payload{body: body, rawSize: len(h.raw), ct: p.ct, logs: h.logs, packID: h.packID}) {
						return false
					}
				}
				return true
			}
			return o.deadLetter(ctx, raw, p.logs, p.packID, serr) == nil
		}
		if o.snd.backoff(ctx, attempt) != nil {
			return false
		}
	}
}

// Shutdown stops accepting batches, seals open groups and waits for them to
// be delivered (or buffered) until ctx ends; then in-flight sends are
// cancelled and what is left is buffered or acked with an error. It is
// idempotent and safe without Start.
func (o *Output) Shutdown(ctx context.Context) error {
	o.shutdown.Do(func() {
		o.mu.Lock()
		started := o.started
		for _, g := range o.open {
			o.seal(g)
		}
		o.closing = true
		o.broadcast()
		o.mu.Unlock()
		if !started {
			o.runCancel()
			o.replayEnd()
			o.ackQueued(errShutdown)
			return
		}
		done := make(chan struct{})
		go func() {
			o.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			o.shutErr = fmt.Errorf("sls output: shutdown deadline passed with data undelivered (buffered when possible): %w", ctx.Err())
			grace, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer cancel()
			o.grace.Store(&grace)
			o.runCancel()
			<-done
		}
		o.runCancel()
		o.replayEnd()
		o.replayWG.Wait()
		if o.buf != nil {
			if err := o.buf.Close(); err != nil && o.shutErr == nil {
				o.shutErr = fmt.Errorf("sls output: close disk buffer: %w", err)
			}
		}
		o.snd.close()
	})
	return o.shutErr
}

func (o *Output) ackQueued(err error) {
	o.mu.Lock()
	q := o.queue
	o.queue = nil
	o.mu.Unlock()
	for _, g := range q {
		o.ackAll(g, err)
	}
}

// sharedAck acks the batch once all n groups holding its events have an
// outcome, with the first error if any.
type sharedAck struct {
	ack  pipeline.Ack
	left atomic.Int32
	mu   sync.Mutex
	err  error
}

func newSharedAck(a pipeline.Ack, n int) *sharedAck {
	s := &sharedAck{ack: a}
	s.left.Store(int32(n))
	return s
}

func (s *sharedAck) Done(err error) {
	if err != nil {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
	if s.left.Add(-1) == 0 {
		s.mu.Lock()
		err := s.err
		s.mu.Unlock()
		s.ack.Done(err)
	}
}
