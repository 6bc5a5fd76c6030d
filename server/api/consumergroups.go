package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/consumer"
	"github.com/sluicelog/sluice/server/meta"
)

// Consumer groups (the Log Service's consumer-group API, which the SDKs'
// consumer libraries call): definitions and checkpoints are metadata;
// membership and shard assignment come from heartbeats (server/consumer).

// Timeouts a consumer group may have, in seconds.
const (
	minGroupTimeout = 1
	maxGroupTimeout = 86400
)

type consumerGroupJSON struct {
	Name    string `json:"name"`
	Timeout int    `json:"timeout"`
	Order   bool   `json:"order"`
}

func (a *API) groupKey(q *request) consumer.GroupKey {
	return consumer.GroupKey{Project: q.project, Logstore: q.vars["logstore"], Group: q.vars["group"]}
}

func (a *API) consumerGroupErr(err error, name string) error {
	var nf *meta.NotFoundError
	if errors.As(err, &nf) && nf.Kind == meta.KindConsumerGroup {
		return &protocol.Error{HTTPStatus: http.StatusNotFound, Code: protocol.CodeConsumerGroupNotExist,
			Message: "consumer group " + strconv.Quote(name) + " does not exist: create it first (the consumer libraries do)", Err: err}
	}
	var ee *meta.ExistsError
	if errors.As(err, &ee) && ee.Kind == meta.KindConsumerGroup {
		return &protocol.Error{HTTPStatus: http.StatusBadRequest, Code: protocol.CodeConsumerGroupAlreadyExist,
			Message: "consumer group " + strconv.Quote(name) + " already exists", Err: err}
	}
	return a.metaErr(err)
}

func validGroupTimeout(t int) error {
	if t < minGroupTimeout || t > maxGroupTimeout {
		return protocol.Errorf(protocol.CodeParameterInvalid, "consumer group timeout %d must be %d to %d seconds", t, minGroupTimeout, maxGroupTimeout)
	}
	return nil
}

func (a *API) createConsumerGroup(ctx context.Context, q *request) error {
	var b struct {
		Name    string   `json:"consumerGroup"`
		Timeout *flexInt `json:"timeout"`
		Order   flexBool `json:"order"`
	}
	if err := a.decodeJSON(q, &b); err != nil {
		return err
	}
	if err := validObjectName("consumer group", b.Name); err != nil {
		return err
	}
	if b.Timeout == nil {
		return protocol.NewError(protocol.CodeParameterInvalid, "consumer group timeout is required (seconds a consumer may be silent before its shards are reassigned)")
	}
	if err := validGroupTimeout(int(*b.Timeout)); err != nil {
		return err
	}
	now := a.now().UTC()
	g := meta.ConsumerGroup{Project: q.project, Logstore: q.vars["logstore"], Name: b.Name, Timeout: int(*b.Timeout), InOrder: bool(b.Order),
		CreateTime: now, LastModifyTime: now}
	if err := a.cfg.Meta.CreateConsumerGroup(ctx, g); err != nil {
		return a.consumerGroupErr(err, b.Name)
	}
	if err := a.consumers.Created(ctx, consumer.GroupKey{Project: g.Project, Logstore: g.Logstore, Group: g.Name}); err != nil {
		return a.consumersErr(err)
	}
	return writeEmpty(q)
}

func (a *API) updateConsumerGroup(ctx context.Context, q *request) error {
	var b struct {
		Timeout *flexInt  `json:"timeout"`
		Order   *flexBool `json:"order"`
	}
	if err := a.decodeJSON(q, &b); err != nil {
		return err
	}
	name := q.vars["group"]
	g, err := a.cfg.Meta.GetConsumerGroup(ctx, q.project, q.vars["logstore"], name)
	if err != nil {
		return a.consumerGroupErr(err, name)
	}
	if b.Timeout != nil {
		if err := validGroupTimeout(int(*b.Timeout)); err != nil {
			return err
		}
		g.Timeout = int(*b.Timeout)
	}
	if b.Order != nil {
		g.InOrder = bool(*b.Order)
	}
	g.LastModifyTime = a.now().UTC()
	if err := a.cfg.Meta.UpdateConsumerGroup(ctx, g); err != nil {
		return a.consumerGroupErr(err, name)
	}
	return writeEmpty(q)
}

func (a *API) deleteConsumerGroup(ctx context.Context, q *request) error {
	name := q.vars["group"]
	if err := a.cfg.Meta.DeleteConsumerGroup(ctx, q.project, q.vars["logstore"], name); err != nil {
		return a.consumerGroupErr(err, name)
	}
	if err := a.consumers.Forget(ctx, a.groupKey(q)); err != nil {
		return a.consumersErr(err)
	}
	return writeEmpty(q)
}

func (a *API) listConsumerGroups(ctx context.Context, q *request) error {
	gs, err := a.cfg.Meta.ListConsumerGroups(ctx, q.project, q.vars["logstore"])
	if err != nil {
		return a.metaErr(err)
	}
	out := make([]consumerGroupJSON, 0, len(gs))
	for _, g := range gs {
		out = append(out, consumerGroupJSON{Name: g.Name, Timeout: g.Timeout, Order: g.InOrder})
	}
	return writeJSON(q, out)
}

// group returns the request's consumer group and its logstore.
func (a *API) group(ctx context.Context, q *request) (meta.ConsumerGroup, meta.Logstore, error) {
	ls, err := a.cfg.Meta.GetLogstore(ctx, q.project, q.vars["logstore"])
	if err != nil {
		return meta.ConsumerGroup{}, ls, a.metaErr(err)
	}
	g, err := a.cfg.Meta.GetConsumerGroup(ctx, q.project, ls.Name, q.vars["group"])
	if err != nil {
		return g, ls, a.consumerGroupErr(err, q.vars["group"])
	}
	return g, ls, nil
}

// heartbeat serves ConsumerGroupHeartBeat: the body lists the shards the
// consumer processes, the reply those it should.
func (a *API) heartbeat(ctx context.Context, q *request) error {
	g, ls, err := a.group(ctx, q)
	if err != nil {
		return err
	}
	name := q.query("consumer")
	if err := validObjectName("consumer", name); err != nil {
		return err
	}
	var held []int
	if err := a.decodeJSON(q, &held); err != nil {
		return err
	}
	shards, err := a.consumers.Heartbeat(ctx, a.groupKey(q), name, held, max(ls.ShardCount, 1), time.Duration(g.Timeout)*time.Second)
	if err != nil {
		return a.consumersErr(err)
	}
	return writeJSON(q, shards)
}

type checkpointJSON struct {
	Shard      int    `json:"shard"`
	Checkpoint string `json:"checkpoint"`
	UpdateTime int64  `json:"updateTime"` // microseconds, as the service
	Consumer   string `json:"consumer"`
}

// getCheckpoints serves GetCheckPoint: every shard's checkpoint ("" where
// none was saved), or one shard's with ?shard=.
func (a *API) getCheckpoints(ctx context.Context, q *request) error {
	_, ls, err := a.group(ctx, q)
	if err != nil {
		return err
	}
	cps, err := a.cfg.Meta.Checkpoints(ctx, q.project, ls.Name, q.vars["group"])
	if err != nil {
		return a.consumerGroupErr(err, q.vars["group"])
	}
	byShard := map[int]meta.Checkpoint{}
	for _, cp := range cps {
		byShard[cp.Shard] = cp
	}
	only := -1
	if s := q.query("shard"); s != "" {
		if only, err = strconv.Atoi(s); err != nil || only < 0 || only >= max(ls.ShardCount, 1) {
			return protocol.Errorf(protocol.CodeShardNotExist, "shard %q does not exist in logstore %q", s, ls.Name)
		}
	}
	out := []checkpointJSON{}
	for s := range max(ls.ShardCount, 1) {
		if only >= 0 && s != only {
			continue
		}
		cj := checkpointJSON{Shard: s}
		if cp, ok := byShard[s]; ok {
			cj.Checkpoint, cj.Consumer, cj.UpdateTime = cp.Cursor, cp.Consumer, cp.UpdateTime.UnixMicro()
		}
		out = append(out, cj)
	}
	return writeJSON(q, out)
}

// updateCheckpoint serves UpdateCheckPoint. Unless forceSuccess=true, the
// consumer must be alive and hold the shard.
func (a *API) updateCheckpoint(ctx context.Context, q *request) error {
	_, ls, err := a.group(ctx, q)
	if err != nil {
		return err
	}
	var b struct {
		Shard      *flexInt `json:"shard"`
		Checkpoint string   `json:"checkpoint"`
	}
	if err := a.decodeJSON(q, &b); err != nil {
		return err
	}
	if b.Shard == nil {
		return protocol.NewError(protocol.CodeParameterInvalid, "checkpoint body needs a shard")
	}
	shard := int(*b.Shard)
	if shard < 0 || shard >= max(ls.ShardCount, 1) {
		return protocol.Errorf(protocol.CodeCheckpointShardNotExist, "shard %d does not exist in logstore %q", shard, ls.Name)
	}
	if _, err := protocol.DecodeCursor(b.Checkpoint); err != nil {
		return err
	}
	name := q.query("consumer")
	if q.query("forceSuccess") != "true" {
		k := a.groupKey(q)
		alive, err := a.consumers.Alive(ctx, k, name)
		if err != nil {
			return a.consumersErr(err)
		}
		if !alive {
			return protocol.Errorf(protocol.CodeConsumerNotExist, "consumer %q is not in consumer group %q (no heartbeat within its timeout)", name, k.Group)
		}
		h, _, err := a.consumers.Holder(ctx, k, shard)
		if err != nil {
			return a.consumersErr(err)
		}
		if h != name {
			return protocol.Errorf(protocol.CodeConsumerNotMatch, "shard %d is held by consumer %q, not %q", shard, h, name)
		}
	}
	cp := meta.Checkpoint{Shard: shard, Cursor: b.Checkpoint, Consumer: name, UpdateTime: a.now().UTC()}
	if err := a.cfg.Meta.PutCheckpoint(ctx, q.project, ls.Name, q.vars["group"], cp); err != nil {
		return a.consumerGroupErr(err, q.vars["group"])
	}
	return writeEmpty(q)
}

// consumersErr answers a failure of the shared consumer-group state
// (PostgreSQL unreachable) as retryable: the consumer libraries retry.
func (a *API) consumersErr(err error) error {
	a.log.Warn("consumer group coordination failed", "err", err)
	return protocol.Errorf(protocol.CodeServerBusy, "consumer group state is unavailable, retry: %v", err)
}
