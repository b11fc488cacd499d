{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "smtp-reply-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "smtp-reply-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "smtp-reply-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "smtp-reply-exporter.labels" -}}
helm.sh/chart: {{ include "smtp-reply-exporter.chart" . }}
{{ include "smtp-reply-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "smtp-reply-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smtp-reply-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "smtp-reply-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "smtp-reply-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Selector of the pods that serve the metrics: the exporter's own, or the MTA pods with the sidecar. */}}
{{- define "smtp-reply-exporter.metricsSelector" -}}
{{- if eq .Values.mode "sidecar" }}
{{- required "sidecar.podSelector is required in sidecar mode: the labels of your MTA pods" .Values.sidecar.podSelector | toYaml }}
{{- else }}
{{- include "smtp-reply-exporter.selectorLabels" . }}
{{- end }}
{{- end }}

{{/* Arguments of the image's entrypoint (`smtp-reply-exporter`): `serve` and its flags for the chosen mode. */}}
{{- define "smtp-reply-exporter.args" -}}
- serve
- --web.listen-address=:{{ .Values.web.port }}
- --web.telemetry-path={{ .Values.web.telemetryPath }}
- --mta={{ .Values.mta }}
{{- if eq .Values.mode "daemonset" }}
- --log.path={{ required "daemonset.logGlob is required in daemonset mode, e.g. /var/log/pods/mail_postfix-*/postfix/*.log" .Values.daemonset.logGlob }}
{{- else if eq .Values.mode "deployment" }}
- --syslog.listen-address=0.0.0.0:{{ .Values.syslog.port }}
{{- else if eq .Values.mode "sidecar" }}
- --log.path={{ .Values.sidecar.logPath }}
{{- with .Values.queue.mta }}
- --{{ . }}.queue={{ $.Values.queue.path }}
{{- end }}
{{- else }}
{{- fail (printf "mode must be daemonset, deployment or sidecar, not %q" .Values.mode) }}
{{- end }}
{{- if and .Values.state.enabled (ne .Values.mode "deployment") }}
- --tail.state-file=/var/lib/smtp-reply-exporter/state.json
{{- end }}
{{- if .Values.web.configSecret }}
- --web.config.file=/etc/smtp-reply-exporter/web/web.yml
{{- end }}
{{- if or .Values.remote.providers .Values.remote.configMapName }}
- --remote.providers=/etc/smtp-reply-exporter/providers/providers.json
{{- end }}
{{- range .Values.extraArgs }}
- {{ . }}
{{- end }}
{{- end }}

{{/* The exporter container: in the DaemonSet, the Deployment, or (sidecar mode) the user's MTA pod. */}}
{{- define "smtp-reply-exporter.container" -}}
- name: smtp-reply-exporter
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    {{- include "smtp-reply-exporter.args" . | nindent 4 }}
  env:
    - name: PYTHONDONTWRITEBYTECODE
      value: "1"
  ports:
    - name: metrics
      containerPort: {{ .Values.web.port }}
      protocol: TCP
    {{- if eq .Values.mode "deployment" }}
    - name: syslog-udp
      containerPort: {{ .Values.syslog.port }}
      protocol: UDP
    - name: syslog-tcp
      containerPort: {{ .Values.syslog.port }}
      protocol: TCP
    {{- end }}
  {{- if .Values.web.configSecret }}
  livenessProbe:
    tcpSocket:
      port: metrics
    periodSeconds: 20
  readinessProbe:
    tcpSocket:
      port: metrics
    periodSeconds: 10
  {{- else }}
  livenessProbe:
    httpGet:
      path: /-/healthy
      port: metrics
    periodSeconds: 20
  readinessProbe:
    httpGet:
      path: /-/ready
      port: metrics
    periodSeconds: 10
  {{- end }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    {{- if .Values.web.configSecret }}
    - name: web-config
      mountPath: /etc/smtp-reply-exporter/web
      readOnly: true
    {{- end }}
    {{- if .Values.state.enabled }}
    - name: state
      mountPath: /var/lib/smtp-reply-exporter
    {{- end }}
    {{- if or .Values.remote.providers .Values.remote.configMapName }}
    - name: remote-providers
      mountPath: /etc/smtp-reply-exporter/providers
      readOnly: true
    {{- end }}
    {{- if eq .Values.mode "daemonset" }}
    - name: pod-logs
      mountPath: {{ .Values.daemonset.podLogsPath }}
      readOnly: true
    {{- else if eq .Values.mode "sidecar" }}
    - name: {{ .Values.sidecar.logVolume }}
      mountPath: {{ dir .Values.sidecar.logPath }}
      readOnly: true
    {{- if .Values.queue.mta }}
    - name: {{ .Values.queue.volume }}
      mountPath: {{ .Values.queue.path }}
      readOnly: true
    {{- end }}
    {{- end }}
{{- end }}

{{/* Volumes of the exporter's pod (in sidecar mode: add these to your MTA pod). */}}
{{- define "smtp-reply-exporter.volumes" -}}
{{- if .Values.web.configSecret }}
- name: web-config
  secret:
    secretName: {{ .Values.web.configSecret }}
{{- end }}
{{- if .Values.state.enabled }}
- name: state
  {{- if .Values.state.hostPath }}
  hostPath:
    path: {{ .Values.state.hostPath }}
    type: DirectoryOrCreate
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- end }}
{{- if eq .Values.mode "daemonset" }}
- name: pod-logs
  hostPath:
    path: {{ .Values.daemonset.podLogsPath }}
    type: Directory
{{- end }}
{{- if or .Values.remote.providers .Values.remote.configMapName }}
- name: remote-providers
  configMap:
    name: {{ include "smtp-reply-exporter.providersConfigMap" . }}
{{- end }}
{{- end }}

{{/* The ConfigMap of --remote.providers: remote.configMapName, or the one the chart writes from remote.providers. */}}
{{- define "smtp-reply-exporter.providersConfigMap" -}}
{{- if .Values.remote.configMapName }}
{{- .Values.remote.configMapName }}
{{- else if .Release }}
{{- include "smtp-reply-exporter.fullname" . }}-providers
{{- else }}
{{- fail "remote.configMapName is required when the volumes template is included without Release (sidecar mode)" }}
{{- end }}
{{- end }}

{{/*
Sidecar mode: include this in the containers of your MTA pod, and "smtp-reply-exporter.volumes"
in its volumes, next to the emptyDir named sidecar.logVolume where the MTA writes its log.
*/}}
{{- define "smtp-reply-exporter.sidecar" -}}
{{- include "smtp-reply-exporter.container" . }}
{{- end }}

{{/* Pod spec shared by the DaemonSet and the Deployment. */}}
{{- define "smtp-reply-exporter.podSpec" -}}
serviceAccountName: {{ include "smtp-reply-exporter.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
containers:
  {{- include "smtp-reply-exporter.container" . | nindent 2 }}
volumes:
  {{- include "smtp-reply-exporter.volumes" . | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "smtp-reply-exporter.podMetadata" -}}
labels:
  {{- include "smtp-reply-exporter.selectorLabels" . | nindent 2 }}
  {{- with .Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
