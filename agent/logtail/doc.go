// Package logtail gives sluice-agent the container interface of Logtail, so
// a Logtail manifest runs with only its image (and server address and key)
// changed:
//
//   - the environment Logtail containers carry (Read): ALIYUN_LOGTAIL_CONFIG
//     naming a file the image does not have means "settings come from the
//     environment", its <region> picks the server; aliyun_logs_machinegroup
//     is a machine-group identity; every ALIYUN_LOGTAIL_* and aliyun_logs_*
//     variable is either used or named in a notice with its replacement;
//   - the names the guides call (Applets), answered by the sluice-agent
//     binary through symbolic links, as busybox does: sh -c 'COMMAND',
//     /usr/local/ilogtail/run_logtail.sh N, /etc/init.d/ilogtaild
//     start|stop|restart|status and cat;
//   - run_logtail.sh's supervision (Supervise): the agent runs as a child
//     that is restarted when it dies, can be stopped and started in place,
//     and keeps collecting for N seconds after SIGTERM;
//   - app_info.json (AppInfo).
//
// The image has no shell (distroless/static), which is why these are Go: a
// static binary with a handful of links is the whole image.
package logtail
