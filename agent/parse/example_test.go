package parse_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicelog/sluice/agent/parse"
	"github.com/sluicelog/sluice/agent/pipeline"
)

func ExampleNewStage() {
	show := pipeline.ConsumerFunc(func(_ context.Context, b *pipeline.Batch) error {
		for _, e := range b.Events {
			fmt.Println(time.Unix(int64(e.Time), 0).UTC().Format(time.RFC3339), e.Fields)
		}
		return nil
	})
	stage, err := parse.NewStage(parse.Config{
		Name:           "nginx-access",
		LogType:        parse.Nginx,
		TimeFormat:     parse.NginxTimeFormat,
		DiscardUnmatch: false,
	}, show, parse.Settings{})
	if err != nil {
		panic(err)
	}
	b := pipeline.NewBatch()
	for _, line := range []string{
		`10.0.0.1 - - [10/Oct/2024:13:55:36 +0800] "GET /a HTTP/1.1" 200 512 "-" "curl/8.4.0"`,
		`not an access log line`,
	} {
		b.BeginEvent(1700000000, 0) // the time the line was read
		b.AddField(parse.DefaultSourceKey, []byte(line))
		b.EndEvent()
	}
	if err := stage.Consume(context.Background(), b); err != nil {
		panic(err)
	}
	// Output:
	// 2024-10-10T05:55:36Z [{remote_addr 10.0.0.1} {remote_user -} {time_local 10/Oct/2024:13:55:36 +0800} {request_method GET} {request_uri /a} {http_version HTTP/1.1} {status 200} {body_bytes_sent 512} {http_referer -} {http_user_agent curl/8.4.0}]
	// 2023-11-14T22:13:20Z [{__raw_log__ not an access log line}]
}
