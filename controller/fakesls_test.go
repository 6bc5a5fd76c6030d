package controller

import (
	"slices"
	"sync"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// fakeSLS is an in-memory SLSClient for branch tests (error paths, call
// counts); the integration tests use a real sluice-server.
type fakeSLS struct {
	mu        sync.Mutex
	projects  map[string]bool
	groups    map[string]*sls.MachineGroup // project/group
	logstores map[string]*sls.LogStore     // project/logstore
	indexes   map[string]sls.Index         // project/logstore
	configs   map[string]string            // project/config
	applied   map[string][]string          // project/config -> groups
	calls     []string                     // mutating calls, in order
	fail      func(call string) error      // injected failure (nil: none)
}

func newFakeSLS() *fakeSLS {
	return &fakeSLS{
		projects: map[string]bool{}, groups: map[string]*sls.MachineGroup{},
		logstores: map[string]*sls.LogStore{}, indexes: map[string]sls.Index{},
		configs: map[string]string{}, applied: map[string][]string{},
	}
}

func slsErr(status int32, code string) error {
	return &sls.Error{HTTPCode: status, Code: code, Message: code, RequestID: "fake"}
}

func (f *fakeSLS) check(call string) error {
	if f.fail != nil {
		return f.fail(call)
	}
	return nil
}

func (f *fakeSLS) record(call string) { f.calls = append(f.calls, call) }

func (f *fakeSLS) mutations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeSLS) CheckProjectExist(p string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("CheckProjectExist"); err != nil {
		return false, err
	}
	return f.projects[p], nil
}

func (f *fakeSLS) CreateProject(name, _ string) (*sls.LogProject, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("CreateProject"); err != nil {
		return nil, err
	}
	f.record("CreateProject " + name)
	f.projects[name] = true
	return &sls.LogProject{Name: name}, nil
}

func (f *fakeSLS) needProject(p string) error {
	if !f.projects[p] {
		return slsErr(404, "ProjectNotExist")
	}
	return nil
}

func (f *fakeSLS) CheckMachineGroupExist(p, g string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.needProject(p); err != nil {
		return false, err
	}
	return f.groups[p+"/"+g] != nil, nil
}

func (f *fakeSLS) CreateMachineGroup(p string, m *sls.MachineGroup) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.needProject(p); err != nil {
		return err
	}
	f.record("CreateMachineGroup " + m.Name)
	f.groups[p+"/"+m.Name] = m
	return nil
}

func (f *fakeSLS) CheckLogstoreExist(p, ls string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.needProject(p); err != nil {
		return false, err
	}
	return f.logstores[p+"/"+ls] != nil, nil
}

func (f *fakeSLS) CreateLogStoreV2(p string, ls *sls.LogStore) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("CreateLogStoreV2"); err != nil {
		return err
	}
	f.record("CreateLogStore " + ls.Name)
	f.logstores[p+"/"+ls.Name] = ls
	return nil
}

func (f *fakeSLS) GetIndex(p, ls string) (*sls.Index, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx, ok := f.indexes[p+"/"+ls]
	if !ok {
		return nil, slsErr(404, "IndexConfigNotExist")
	}
	return &idx, nil
}

func (f *fakeSLS) CreateIndex(p, ls string, idx sls.Index) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("CreateIndex " + ls)
	f.indexes[p+"/"+ls] = idx
	return nil
}

func (f *fakeSLS) GetConfigString(p, c string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("GetConfigString"); err != nil {
		return "", err
	}
	s, ok := f.configs[p+"/"+c]
	if !ok {
		return "", slsErr(404, "ConfigNotExist")
	}
	return s, nil
}

func (f *fakeSLS) CreateConfigString(p, body string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := configNameOf(body)
	f.record("CreateConfig " + name)
	f.configs[p+"/"+name] = body
	return nil
}

func (f *fakeSLS) UpdateConfigString(p, name, body string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("UpdateConfig " + name)
	f.configs[p+"/"+name] = body
	return nil
}

func (f *fakeSLS) DeleteConfig(p, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("DeleteConfig"); err != nil {
		return err
	}
	if _, ok := f.configs[p+"/"+name]; !ok {
		return slsErr(404, "ConfigNotExist")
	}
	f.record("DeleteConfig " + name)
	delete(f.configs, p+"/"+name)
	delete(f.applied, p+"/"+name)
	return nil
}

func (f *fakeSLS) GetAppliedMachineGroups(p, c string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.configs[p+"/"+c]; !ok {
		return nil, slsErr(404, "ConfigNotExist")
	}
	return slices.Clone(f.applied[p+"/"+c]), nil
}

func (f *fakeSLS) ApplyConfigToMachineGroup(p, c, g string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Apply " + c + " " + g)
	f.applied[p+"/"+c] = append(f.applied[p+"/"+c], g)
	return nil
}

func (f *fakeSLS) RemoveConfigFromMachineGroup(p, c, g string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Remove " + c + " " + g)
	f.applied[p+"/"+c] = slices.DeleteFunc(f.applied[p+"/"+c], func(s string) bool { return s == g })
	return nil
}

func configNameOf(body string) string {
	var v struct {
		ConfigName string `json:"configName"`
	}
	_ = jsonUnmarshal([]byte(body), &v)
	return v.ConfigName
}
