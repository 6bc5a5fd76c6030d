{{/* Name of the chart, overridable. */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified prefix of every object name; short enough for "-controller" suffixes. */}}
{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sluice.labels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: include "sluice.selector" (list . "agent") */}}
{{- define "sluice.selector" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: {{ include "sluice.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "sluice.image" -}}
{{- $ctx := index . 0 -}}
{{- printf "%s/%s:%s" $ctx.Values.image.registry (index . 1).image.repository (default $ctx.Chart.AppVersion $ctx.Values.image.tag) -}}
{{- end -}}

{{- define "sluice.serverName" -}}{{ include "sluice.fullname" . }}-server{{- end -}}

{{/* Host of the in-cluster server Service. */}}
{{- define "sluice.serverHost" -}}
{{- printf "%s.%s.svc" (include "sluice.serverName" .) .Release.Namespace -}}
{{- end -}}

{{/* Host name the server treats as its endpoint (--base-domain). */}}
{{- define "sluice.baseDomain" -}}
{{- default (include "sluice.serverHost" .) .Values.server.baseDomain -}}
{{- end -}}

{{/* Endpoint the controller and the agents use. */}}
{{- define "sluice.endpoint" -}}
{{- if .Values.server.enabled -}}
{{- printf "http://%s:%d" (include "sluice.baseDomain" .) (int .Values.server.port) -}}
{{- else -}}
{{- required "externalServer.endpoint is required when server.enabled is false" .Values.externalServer.endpoint -}}
{{- end -}}
{{- end -}}

{{/* host:port connections go to: the Service, whatever the endpoint's host. */}}
{{- define "sluice.dialAddress" -}}
{{- if .Values.server.enabled -}}
{{- printf "%s:%d" (include "sluice.serverHost" .) (int .Values.server.port) -}}
{{- else -}}
{{- .Values.externalServer.dialAddress -}}
{{- end -}}
{{- end -}}

{{- define "sluice.adminSecretName" -}}
{{- default (printf "%s-admin-key" (include "sluice.fullname" .)) .Values.server.adminKey.existingSecret -}}
{{- end -}}

{{/* Secret a client signs with: include "sluice.clientSecretName" (list . .Values.agent "agent") */}}
{{- define "sluice.clientSecretName" -}}
{{- $ctx := index . 0 -}}
{{- $own := (index . 1).credentialsSecret -}}
{{- if $own -}}
{{- $own -}}
{{- else if or $ctx.Values.server.enabled $ctx.Values.server.adminKey.existingSecret -}}
{{- include "sluice.adminSecretName" $ctx -}}
{{- else -}}
{{- fail (printf "%s.credentialsSecret is required when server.enabled is false: name a Secret with accessKeyId and accessKeySecret" (index . 2)) -}}
{{- end -}}
{{- end -}}

{{- define "sluice.machineGroup" -}}k8s-group-{{ .Values.clusterId }}{{- end -}}

{{- define "sluice.pullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}
