package api

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/meta"
)

// keysPrefix is the path of Sluice's own access-key administration API
// (not part of the Log Service API, hence the underscore).
const keysPrefix = "_sluice"

// match finds the endpoint for method and path. Paths are matched by
// segment; a path parameter is any single non-empty segment.
func (a *API) match(method, path string, query url.Values, hasProject bool) (route, map[string]string, error) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) == 1 && segs[0] == "" {
		segs = nil
	}
	for _, s := range segs {
		if s == "" {
			return route{}, nil, notFound(method, path)
		}
	}
	vars := map[string]string{}
	n := len(segs)
	seg := func(i int) string {
		if i < n {
			return segs[i]
		}
		return ""
	}
	R := meta.PermRead
	W := meta.PermWrite
	proj := func(api string, h handlerFunc, perm meta.Permission) (route, map[string]string, error) {
		return route{api: api, h: h, perm: perm, project: true}, vars, nil
	}

	switch {
	case n == 0:
		switch method {
		case http.MethodGet:
			if hasProject {
				return proj("GetProject", a.getProject, R)
			}
			return route{api: "ListProject", h: a.listProjects}, vars, nil
		case http.MethodPost:
			return route{api: "CreateProject", h: a.createProject, admin: true}, vars, nil
		case http.MethodPut:
			return proj("UpdateProject", a.updateProject, W)
		case http.MethodDelete:
			return route{api: "DeleteProject", h: a.deleteProject, admin: true, project: true, perm: W}, vars, nil
		}

	case n == 1 && seg(0) == "logs" && method == http.MethodGet:
		return proj("GetProjectLogs", a.getProjectLogs, R)

	case seg(0) == "logstores":
		switch {
		case n == 1:
			switch method {
			case http.MethodGet:
				return proj("ListLogStore", a.listLogstores, R)
			case http.MethodPost:
				return proj("CreateLogStore", a.createLogstore, W)
			}
		default:
			vars["logstore"] = seg(1)
			switch {
			case n == 2:
				switch method {
				case http.MethodPost:
					return proj("PutLogs", a.putLogs, W)
				case http.MethodGet:
					switch query.Get("type") {
					case "log":
						return proj("GetLogs", a.getLogsLegacy, R)
					case "histogram":
						return proj("GetHistograms", a.getHistograms, R)
					case "topic":
						return proj("ListTopics", a.listTopics, R)
					case "context_log":
						return proj("GetContextLogs", a.getContextLogs, R)
					case "":
						return proj("GetLogStore", a.getLogstore, R)
					}
					return route{}, nil, protocol.Errorf(protocol.CodeParameterInvalid,
						"unsupported type=%q on GET /logstores/{logstore}: use log, histogram, topic or context_log", query.Get("type"))
				case http.MethodPut:
					return proj("UpdateLogStore", a.updateLogstore, W)
				case http.MethodDelete:
					return proj("DeleteLogStore", a.deleteLogstore, W)
				}
			case n == 3 && seg(2) == "logs" && method == http.MethodPost:
				return proj("GetLogs", a.getLogs, R)
			case n == 3 && seg(2) == "index":
				switch method {
				case http.MethodPost:
					return proj("CreateIndex", a.createIndex, W)
				case http.MethodPut:
					return proj("UpdateIndex", a.updateIndex, W)
				case http.MethodGet:
					if query.Get("type") == "histogram" {
						// The sls20201230 SDKs' GetHistograms.
						return proj("GetHistograms", a.getHistograms, R)
					}
					return proj("GetIndex", a.getIndex, R)
				case http.MethodDelete:
					return proj("DeleteIndex", a.deleteIndex, W)
				}
			case n == 3 && (seg(2) == "track" || seg(2) == "track_ua.gif"):
				// Web tracking: anonymous, when the logstore enables it.
				vars["track"] = seg(2)
				switch method {
				case http.MethodGet, http.MethodPost, http.MethodOptions:
					return route{api: "WebTracking", h: a.webTracking, anonymous: true}, vars, nil
				}
			case n == 3 && seg(2) == "shards" && method == http.MethodGet:
				return proj("ListShards", a.listShards, R)
			case seg(2) == "consumergroups" && (n == 3 || n == 4):
				// Consumers with a read-only key must be able to run the
				// consumer libraries, which create the group and save
				// checkpoints: only deleting a group needs write.
				if n == 3 {
					switch method {
					case http.MethodGet:
						return proj("ListConsumerGroup", a.listConsumerGroups, R)
					case http.MethodPost:
						return proj("CreateConsumerGroup", a.createConsumerGroup, R)
					}
					break
				}
				vars["group"] = seg(3)
				switch method {
				case http.MethodPut:
					return proj("UpdateConsumerGroup", a.updateConsumerGroup, R)
				case http.MethodDelete:
					return proj("DeleteConsumerGroup", a.deleteConsumerGroup, W)
				case http.MethodGet:
					return proj("GetCheckPoint", a.getCheckpoints, R)
				case http.MethodPost:
					switch query.Get("type") {
					case "heartbeat":
						return proj("ConsumerGroupHeartBeat", a.heartbeat, R)
					case "checkpoint":
						return proj("UpdateCheckPoint", a.updateCheckpoint, R)
					}
					return route{}, nil, protocol.Errorf(protocol.CodeParameterInvalid,
						"unsupported type=%q on POST /logstores/{logstore}/consumergroups/{group}: use heartbeat or checkpoint", query.Get("type"))
				}
			case n == 4 && seg(2) == "shards" && (seg(3) == "lb" || seg(3) == "route") && method == http.MethodPost:
				return proj("PutLogs", a.putLogs, W)
			case n == 4 && seg(2) == "shards" && method == http.MethodGet:
				vars["shard"] = seg(3)
				switch query.Get("type") {
				case "cursor":
					return proj("GetCursor", a.getCursor, R)
				case "cursor_time":
					return proj("GetCursorTime", a.getCursorTime, R)
				case "logs", "log":
					return proj("PullLogs", a.pullLogs, R)
				}
				return route{}, nil, protocol.Errorf(protocol.CodeParameterInvalid,
					"unsupported type=%q on GET /logstores/{logstore}/shards/{shard}: use cursor, cursor_time or logs", query.Get("type"))
			case n == 4 && seg(2) == "shards" && method == http.MethodPost && (query.Get("action") == "split" || query.Get("action") == "merge"):
				return route{}, nil, protocol.Errorf(protocol.CodeParameterInvalid,
					"%s of shards is not supported by this server: set the logstore's shardCount (it can grow) instead", query.Get("action"))
			}
		}

	case seg(0) == "machinegroups":
		switch {
		case n == 1:
			switch method {
			case http.MethodGet:
				return proj("ListMachineGroup", a.listMachineGroups, R)
			case http.MethodPost:
				return proj("CreateMachineGroup", a.createMachineGroup, W)
			}
		default:
			vars["group"] = seg(1)
			switch {
			case n == 2:
				switch method {
				case http.MethodGet:
					return proj("GetMachineGroup", a.getMachineGroup, R)
				case http.MethodPut:
					return proj("UpdateMachineGroup", a.updateMachineGroup, W)
				case http.MethodDelete:
					return proj("DeleteMachineGroup", a.deleteMachineGroup, W)
				}
			case n == 3 && seg(2) == "machines" && method == http.MethodGet:
				return proj("ListMachines", a.listMachines, R)
			case n == 3 && seg(2) == "configs" && method == http.MethodGet:
				return proj("GetAppliedConfigs", a.appliedConfigs, R)
			case n == 4 && seg(2) == "configs":
				vars["config"] = seg(3)
				switch method {
				case http.MethodPut:
					return proj("ApplyConfigToMachineGroup", a.applyConfig, W)
				case http.MethodDelete:
					return proj("RemoveConfigFromMachineGroup", a.removeConfig, W)
				}
			}
		}

	case seg(0) == "configs":
		switch {
		case n == 1:
			switch method {
			case http.MethodGet:
				return proj("ListConfig", a.listConfigs, R)
			case http.MethodPost:
				return proj("CreateConfig", a.createConfig, W)
			}
		default:
			vars["config"] = seg(1)
			switch {
			case n == 2:
				switch method {
				case http.MethodGet:
					return proj("GetConfig", a.getConfig, R)
				case http.MethodPut:
					return proj("UpdateConfig", a.updateConfig, W)
				case http.MethodDelete:
					return proj("DeleteConfig", a.deleteConfig, W)
				}
			case n == 3 && seg(2) == "machinegroups" && method == http.MethodGet:
				return proj("GetAppliedMachineGroups", a.configGroups, R)
			}
		}

	case seg(0) == "jobs":
		switch {
		case n == 1 && method == http.MethodGet:
			return proj("ListAlert", a.listAlerts, R)
		case n == 1 && method == http.MethodPost:
			return proj("CreateAlert", a.createDocument(alertKind), W)
		case n == 2:
			vars["name"] = seg(1)
			switch method {
			case http.MethodGet:
				return proj("GetAlert", a.getDocument(alertKind), R)
			case http.MethodPut:
				return proj("UpdateAlert", a.updateAlert, W)
			case http.MethodDelete:
				return proj("DeleteAlert", a.deleteAlert, W)
			}
		case n == 3 && seg(2) == "state" && method == http.MethodGet:
			vars["name"] = seg(1)
			return proj("GetAlertState", a.alertState, R)
		}

	case seg(0) == "savedsearches" || seg(0) == "dashboards":
		k, api := savedSearchKind, "SavedSearch"
		if seg(0) == "dashboards" {
			k, api = dashboardKind, "Dashboard"
		}
		switch {
		case n == 1 && method == http.MethodGet:
			return proj("List"+api, a.listDocuments(k), R)
		case n == 1 && method == http.MethodPost:
			return proj("Create"+api, a.createDocument(k), W)
		case n == 2:
			vars["name"] = seg(1)
			switch method {
			case http.MethodGet:
				return proj("Get"+api, a.getDocument(k), R)
			case http.MethodPut:
				return proj("Update"+api, a.updateDocument(k), W)
			case http.MethodDelete:
				return proj("Delete"+api, a.deleteDocument(k), W)
			}
		case k == dashboardKind && seg(2) == "charts" && (n == 3 || n == 4):
			vars["name"] = seg(1)
			switch {
			case n == 3 && method == http.MethodPost:
				return proj("CreateChart", a.editChart, W)
			case n == 3 && method == http.MethodPut:
				return proj("UpdateChart", a.editChart, W)
			case n == 4 && method == http.MethodGet:
				vars["chart"] = seg(3)
				return proj("GetChart", a.getChart, R)
			case n == 4 && method == http.MethodDelete:
				vars["chart"] = seg(3)
				return proj("DeleteChart", a.editChart, W)
			}
		}

	case seg(0) == "prometheus" && n == 6 && seg(3) == "api" && seg(4) == "v1" && seg(5) == "write" && method == http.MethodPost:
		// The Go SDK's PutLogsWithMetricStoreURL: a LogGroup body like
		// PutLogs, the project also in the path.
		vars["pathProject"], vars["logstore"] = seg(1), seg(2)
		return proj("PutLogs", a.putLogs, W)

	case seg(0) == keysPrefix && seg(1) == "accesskeys":
		switch {
		case n == 2 && method == http.MethodGet:
			return route{api: "ListAccessKeys", h: a.listKeys, admin: true}, vars, nil
		case n == 2 && method == http.MethodPost:
			return route{api: "CreateAccessKey", h: a.createKey, admin: true}, vars, nil
		case n == 3:
			vars["key"] = seg(2)
			switch method {
			case http.MethodPut:
				return route{api: "UpdateAccessKey", h: a.updateKey, admin: true}, vars, nil
			case http.MethodDelete:
				return route{api: "DeleteAccessKey", h: a.deleteKey, admin: true}, vars, nil
			}
		}
	}
	return route{}, nil, notFound(method, path)
}

func notFound(method, path string) error {
	return &protocol.Error{HTTPStatus: http.StatusNotFound, Code: protocol.CodeParameterInvalid,
		Message: method + " " + path + " is not a Log Service API this server implements"}
}
