package meta

import (
	"encoding/json"
	"time"
)

// Kinds of the objects in this file.
const (
	KindConsumerGroup Kind = "consumer group"
	KindSavedSearch   Kind = "saved search"
	KindDashboard     Kind = "dashboard"
)

// ConsumerGroup is a logstore's consumer group: consumers sharing its
// shards, with a checkpoint per shard (what the Log Service's consumer
// libraries resume from). Which consumer holds which shard is not
// metadata: consumers announce themselves by heartbeat (server/consumer).
type ConsumerGroup struct {
	Project  string `json:"project"`
	Logstore string `json:"logstore"`
	Name     string `json:"name"`
	// Timeout: a consumer silent this many seconds is gone, its shards
	// go to the others.
	Timeout int `json:"timeout"`
	// InOrder: the service's "order" flag (consume a split shard's
	// parent before its children); kept, with no effect here (shards
	// are never split).
	InOrder        bool      `json:"order"`
	CreateTime     time.Time `json:"createTime"`
	LastModifyTime time.Time `json:"lastModifyTime"`
}

// Checkpoint is a consumer group's progress in one shard: the cursor to
// resume from, who saved it and when.
type Checkpoint struct {
	Shard      int       `json:"shard"`
	Cursor     string    `json:"checkpoint"`
	Consumer   string    `json:"consumer"`
	UpdateTime time.Time `json:"updateTime"`
}

// Document is a project's saved search or dashboard (Kind says which),
// kept as the JSON the client sent (validated by the API before it is
// stored), so fields Sluice does not interpret survive a round trip.
type Document struct {
	Project        string          `json:"project"`
	Kind           Kind            `json:"kind"`
	Name           string          `json:"name"`
	Raw            json.RawMessage `json:"raw"`
	CreateTime     time.Time       `json:"createTime"`
	LastModifyTime time.Time       `json:"lastModifyTime"`
}
