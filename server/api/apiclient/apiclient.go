// Package apiclient is a small signed client for the sluice-server API,
// used by the `sluice-server query` and `sluice-server keys` commands. It
// names the project with the x-log-project header, so it needs no DNS for
// {project}.{endpoint} host names (the Go SDK does).
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/api"
)

// Client calls one sluice-server.
type Client struct {
	endpoint *url.URL
	signer   protocol.Signer
	hc       *http.Client
}

// New returns a client for endpoint ("http://host:port" or "host:port").
// hc nil means a client with a 60 s timeout.
func New(endpoint string, creds protocol.Credentials, hc *http.Client) (*Client, error) {
	if !strings.Contains(endpoint, "://") {
		endpoint = "http://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q: want http(s)://host:port", endpoint)
	}
	s := protocol.Signer{Credentials: creds}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%w (pass --access-key-id and --access-key-secret, or --key-file)", err)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	return &Client{endpoint: u, signer: s, hc: hc}, nil
}

// Do sends a signed request and decodes a JSON reply into out (when not
// nil). API errors are returned as *protocol.Error.
func (c *Client) Do(ctx context.Context, method, project, path string, body, out any) (http.Header, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	u := *c.endpoint
	p, q, _ := strings.Cut(path, "?")
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	u.RawQuery = q
	r, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	r.Header.Set(protocol.HeaderAPIVersion, protocol.APIVersion)
	r.Header.Set(protocol.HeaderBodyRawSize, strconv.Itoa(len(b)))
	if project != "" {
		r.Header.Set(protocol.HeaderProject, project)
	}
	if b != nil {
		r.Header.Set("Content-Type", protocol.ContentTypeJSON)
	}
	if err := c.signer.SignRequest(r, b, time.Now()); err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &protocol.Error{HTTPStatus: resp.StatusCode}
		if json.Unmarshal(rb, e) != nil || e.Code == "" {
			return nil, fmt.Errorf("HTTP %d from %s: %s", resp.StatusCode, u.Host, strings.TrimSpace(string(rb)))
		}
		return nil, e
	}
	if out != nil {
		if err := json.Unmarshal(rb, out); err != nil {
			return nil, fmt.Errorf("decode reply: %w", err)
		}
	}
	return resp.Header, nil
}

// Result is a GetLogs reply: rows of string values, and the column order
// (SQL columns, or keys sorted with __time__ first for searches).
type Result struct {
	Columns []string
	Rows    []map[string]string
	Count   int64
	HasSQL  bool
}

// GetLogs runs query over [from, to).
func (c *Client) GetLogs(ctx context.Context, project, logstore, query string, from, to time.Time, line int) (*Result, error) {
	body := map[string]any{"from": from.Unix(), "to": to.Unix(), "query": query, "line": line, "reverse": true}
	var reply struct {
		Meta struct {
			Count  int64    `json:"count"`
			HasSQL bool     `json:"hasSQL"`
			Keys   []string `json:"keys"`
		} `json:"meta"`
		Data []map[string]string `json:"data"`
	}
	if _, err := c.Do(ctx, http.MethodPost, project, "/logstores/"+url.PathEscape(logstore)+"/logs", body, &reply); err != nil {
		return nil, err
	}
	res := &Result{Rows: reply.Data, Count: reply.Meta.Count, HasSQL: reply.Meta.HasSQL}
	if res.HasSQL && len(reply.Meta.Keys) > 0 {
		res.Columns = reply.Meta.Keys
	} else {
		res.Columns = columnsOf(reply.Data)
	}
	return res, nil
}

// columnsOf orders the keys of search rows: __time__, __topic__,
// __source__, then content keys, then __tag__: keys, each sorted.
func columnsOf(rows []map[string]string) []string {
	seen := map[string]bool{}
	for _, r := range rows {
		for k := range r {
			seen[k] = true
		}
	}
	rank := func(k string) int {
		switch {
		case k == "__time__":
			return 0
		case k == "__topic__":
			return 1
		case k == "__source__":
			return 2
		case strings.HasPrefix(k, "__tag__:"):
			return 4
		case strings.HasPrefix(k, "__"):
			return 5
		}
		return 3
	}
	cols := make([]string, 0, len(seen))
	for k := range seen {
		cols = append(cols, k)
	}
	sort.Slice(cols, func(i, j int) bool {
		ri, rj := rank(cols[i]), rank(cols[j])
		if ri != rj {
			return ri < rj
		}
		return cols[i] < cols[j]
	})
	return cols
}

// WriteTable prints res as an aligned table; __time__ is shown as RFC 3339.
func WriteTable(w io.Writer, res *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(res.Columns, "\t"))
	for _, row := range res.Rows {
		vals := make([]string, len(res.Columns))
		for i, c := range res.Columns {
			v := row[c]
			if c == "__time__" && !res.HasSQL {
				if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
					v = time.Unix(sec, 0).UTC().Format(time.RFC3339)
				}
			}
			vals[i] = strings.NewReplacer("\t", `\t`, "\n", `\n`).Replace(v)
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "(%d rows)\n", len(res.Rows))
	return err
}

// ListKeys lists access keys (admin only).
func (c *Client) ListKeys(ctx context.Context) ([]api.KeyInfo, error) {
	var out api.KeyList
	_, err := c.Do(ctx, http.MethodGet, "", "/_sluice/accesskeys", nil, &out)
	return out.AccessKeys, err
}

// CreateKey creates a key and returns its id and secret.
func (c *Client) CreateKey(ctx context.Context, req api.KeyRequest) (id, secret string, err error) {
	var out struct {
		ID     string `json:"accessKeyId"`
		Secret string `json:"accessKeySecret"`
	}
	_, err = c.Do(ctx, http.MethodPost, "", "/_sluice/accesskeys", req, &out)
	return out.ID, out.Secret, err
}

// UpdateKey replaces a key's admin flag, project permissions and description.
func (c *Client) UpdateKey(ctx context.Context, id string, req api.KeyRequest) error {
	_, err := c.Do(ctx, http.MethodPut, "", "/_sluice/accesskeys/"+url.PathEscape(id), req, nil)
	return err
}

// DeleteKey deletes a key.
func (c *Client) DeleteKey(ctx context.Context, id string) error {
	_, err := c.Do(ctx, http.MethodDelete, "", "/_sluice/accesskeys/"+url.PathEscape(id), nil, nil)
	return err
}

// ParseTime reads a --from/--to value: "now", a relative duration ("-15m",
// "-2h"), unix seconds, or RFC 3339.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "now":
		return now, nil
	case strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+"):
		d, err := time.ParseDuration(s)
		if err == nil {
			return now.Add(d), nil
		}
		if strings.HasSuffix(s, "d") {
			n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
			if err == nil {
				return now.AddDate(0, 0, n), nil
			}
		}
		return time.Time{}, fmt.Errorf("time %q: want now, -15m, -2h, -7d, unix seconds or RFC 3339", s)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want now, -15m, -2h, -7d, unix seconds or RFC 3339", s)
	}
	return t, nil
}
