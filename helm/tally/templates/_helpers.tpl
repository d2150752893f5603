{{/* tally - template helpers: names, labels, the image, the environment. */}}

{{/* The chart name, or nameOverride. */}}
{{- define "tally.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name: release-chart, or fullnameOverride. */}}
{{- define "tally.fullname" -}}
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

{{/* Labels that select the release's pods (never change them: selectors are immutable). */}}
{{- define "tally.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tally.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "tally.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tally.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tally
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The service account the pods run as. */}}
{{- define "tally.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tally.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest. */}}
{{- define "tally.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding the database password ("" if none). */}}
{{- define "tally.passwordSecret" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else if .Values.database.password }}
{{- printf "%s-db" (include "tally.fullname" .) }}
{{- end }}
{{- end }}

{{/* Key of the password in that Secret. */}}
{{- define "tally.passwordKey" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecretPasswordKey }}
{{- else }}
{{- print "password" }}
{{- end }}
{{- end }}

{{/* Where the database CA certificate is mounted. */}}
{{- define "tally.caDir" -}}
/etc/tally/db-ca
{{- end }}

{{/* Refuses settings that cannot work; rendered by every template that needs them. */}}
{{- define "tally.validate" -}}
{{- $v := .Values -}}
{{- if and (has $v.database.sslmode (list "verify-ca" "verify-full")) (not $v.database.caCert.existingSecret) }}
{{- fail (printf "database.sslmode %s needs database.caCert.existingSecret (the CA that signed the server certificate)" $v.database.sslmode) }}
{{- end }}
{{- if and $v.database.password $v.database.existingSecret }}
{{- fail "set database.password or database.existingSecret, not both" }}
{{- end }}
{{- if lt (int $v.terminationGracePeriodSeconds) (add $v.preStopSleepSeconds 15 | int) }}
{{- fail (printf "terminationGracePeriodSeconds must be at least preStopSleepSeconds + 15 (%d): lighttpd drains for up to 10 s after the preStop sleep" (add $v.preStopSleepSeconds 15 | int)) }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- end }}

{{/* The non-secret environment of the responders and the migration,
     as a map: libpq's PG* variables and tally's own settings. */}}
{{- define "tally.envMap" -}}
{{- $v := .Values -}}
PGHOST: {{ join "," $v.database.hosts | quote }}
PGPORT: {{ $v.database.port | quote }}
PGDATABASE: {{ $v.database.name | quote }}
PGUSER: {{ $v.database.user | quote }}
PGSSLMODE: {{ $v.database.sslmode | quote }}
PGTARGETSESSIONATTRS: {{ $v.database.targetSessionAttrs | quote }}
{{- if $v.database.caCert.existingSecret }}
PGSSLROOTCERT: {{ printf "%s/ca.crt" (include "tally.caDir" .) | quote }}
{{- end }}
TALLY_TRUSTED_PROXIES: {{ join "," $v.config.trustedProxies | quote }}
TALLY_LOG_LEVEL: {{ $v.config.logLevel | quote }}
TALLY_PROCESSES: {{ $v.responders.processes | quote }}
{{- if $v.responders.threads }}
TALLY_THREADS: {{ $v.responders.threads | quote }}
{{- end }}
TALLY_DB_TIMEOUT_MS: {{ $v.config.dbTimeoutMs | quote }}
TALLY_DB_CONNECT_TIMEOUT: {{ $v.config.dbConnectTimeout | quote }}
TALLY_RETRY_AFTER: {{ $v.config.retryAfter | quote }}
TALLY_IO_TIMEOUT: {{ $v.config.ioTimeout | quote }}
TALLY_BATCH_MAX: {{ $v.config.batchMax | quote }}
TALLY_IDEMPOTENCY_RETENTION: {{ $v.config.idempotencyRetention | quote }}
TALLY_RUN_DIR: "/run/tally"
TALLY_SOCKET_DIR: "/run/tally"
TALLY_LISTEN: "0.0.0.0"
TALLY_PORT: {{ $v.web.port | quote }}
{{- end }}

{{/* PGPASSWORD from the Secret, as a container env list (or nothing). */}}
{{- define "tally.passwordEnv" -}}
{{- with include "tally.passwordSecret" . }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ include "tally.passwordKey" $ }}
{{- end }}
{{- end }}

{{/* The security context of every container. */}}
{{- define "tally.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The security context of every pod. */}}
{{- define "tally.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Volume of the database CA certificate, if any. */}}
{{- define "tally.caVolume" -}}
{{- with .Values.database.caCert.existingSecret }}
- name: db-ca
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: {{ $.Values.database.caCert.key }}
        path: ca.crt
{{- end }}
{{- end }}

{{- define "tally.caVolumeMount" -}}
{{- if .Values.database.caCert.existingSecret }}
- name: db-ca
  mountPath: {{ include "tally.caDir" . }}
  readOnly: true
{{- end }}
{{- end }}
