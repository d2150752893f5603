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

{{/* Name of the Secret holding the owner's password, for the schema
     step ("" if none): migration.existingSecret, or the Job's own hook
     Secret for migration.password. */}}
{{- define "tally.migrationPasswordSecret" -}}
{{- if .Values.migration.existingSecret }}
{{- .Values.migration.existingSecret }}
{{- else if .Values.migration.password }}
{{- printf "%s-migrate-db" (include "tally.fullname" .) }}
{{- end }}
{{- end }}

{{/* libpq's sslmode: database.sslmode, else verify-full with a CA and
     require without one. */}}
{{- define "tally.sslmode" -}}
{{- if .Values.database.sslmode }}
{{- .Values.database.sslmode }}
{{- else if .Values.database.caCert.existingSecret }}
{{- print "verify-full" }}
{{- else }}
{{- print "require" }}
{{- end }}
{{- end }}

{{/* The sockets' and the metrics segment's directory: made 0750 by the
     first container of the pod (the entrypoint) inside the run
     emptyDir at /run/tally, which Kubernetes makes 0777 (fsGroup only
     sets its group). */}}
{{- define "tally.runDir" -}}
/run/tally/private
{{- end }}

{{/* Where the database CA certificate is mounted. */}}
{{- define "tally.caDir" -}}
/etc/tally/db-ca
{{- end }}

{{/* Refuses settings that cannot work; rendered by every template that needs them. */}}
{{- define "tally.validate" -}}
{{- $v := .Values -}}
{{- if eq (int $v.web.port) (int $v.web.internalPort) }}
{{- fail "web.port and web.internalPort must differ: two lighttpd processes listen on them" }}
{{- end }}
{{- /* fails when web's memory limit leaves too few connections */}}
{{- $_ := include "tally.web.connectionMemory" . -}}
{{- if and (has $v.database.sslmode (list "verify-ca" "verify-full")) (not $v.database.caCert.existingSecret) }}
{{- fail (printf "database.sslmode %s needs database.caCert.existingSecret (the CA that signed the server certificate)" $v.database.sslmode) }}
{{- end }}
{{- if and $v.database.caCert.existingSecret $v.database.sslmode (ne $v.database.sslmode "verify-full") }}
{{- fail (printf "database.sslmode %s with database.caCert.existingSecret: a CA is there to verify the server, so only verify-full (or leaving sslmode empty) is accepted" $v.database.sslmode) }}
{{- end }}
{{- if and $v.database.password $v.database.existingSecret }}
{{- fail "set database.password or database.existingSecret, not both" }}
{{- end }}
{{- if $v.migration.enabled }}
{{- if eq $v.migration.user $v.database.user }}
{{- fail (printf "migration.user and database.user are both %s: the schema step runs as the owner role, the pods as a runtime role of their own (README, Deploy)" $v.database.user) }}
{{- end }}
{{- if and $v.migration.password $v.migration.existingSecret }}
{{- fail "set migration.password or migration.existingSecret, not both" }}
{{- end }}
{{- if and (or $v.database.password $v.database.existingSecret) (not (or $v.migration.password $v.migration.existingSecret)) }}
{{- fail "the schema step logs in as migration.user: set migration.existingSecret (the owner's password) too" }}
{{- end }}
{{- end }}
{{- if lt (int $v.terminationGracePeriodSeconds) (add $v.preStopSleepSeconds 15 | int) }}
{{- fail (printf "terminationGracePeriodSeconds must be at least preStopSleepSeconds + 15 (%d): lighttpd drains for up to 10 s after the preStop sleep" (add $v.preStopSleepSeconds 15 | int)) }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- end }}

{{/* A Kubernetes memory quantity ("128Mi", "1G", 134217728) in bytes;
     fails on a form it does not know (fractions, exponents). */}}
{{- define "tally.bytes" -}}
{{- $q := toString . -}}
{{- if kindIs "float64" . }}{{ $q = int64 . | toString }}{{ end -}}
{{- $units := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 -}}
{{- $n := regexFind "^[0-9]+" $q -}}
{{- $unit := trimPrefix $n $q -}}
{{- if or (not $n) (and $unit (not (hasKey $units $unit))) -}}
{{- fail (printf "memory quantity %q: use a whole number, with Ki, Mi, Gi, Ti, k, M, G or T or nothing" $q) -}}
{{- end -}}
{{- if $unit }}{{ mul (int64 $n) (get $units $unit) }}{{ else }}{{ $n }}{{ end -}}
{{- end }}

{{/* The non-secret environment of the responders and the migration,
     as a map: libpq's PG* variables and tally's own settings. */}}
{{- define "tally.envMap" -}}
{{- /* Numbers go through int64: YAML's numbers reach templates as
       floats, and quote writes 10000000 as "1e+07". */}}
{{- $v := .Values -}}
PGHOST: {{ join "," $v.database.hosts | quote }}
PGPORT: {{ $v.database.port | int64 | quote }}
PGDATABASE: {{ $v.database.name | quote }}
PGUSER: {{ $v.database.user | quote }}
PGSSLMODE: {{ include "tally.sslmode" . | quote }}
PGTARGETSESSIONATTRS: {{ $v.database.targetSessionAttrs | quote }}
{{- if $v.database.caCert.existingSecret }}
PGSSLROOTCERT: {{ printf "%s/ca.crt" (include "tally.caDir" .) | quote }}
{{- end }}
TALLY_TRUSTED_PROXIES: {{ join "," $v.config.trustedProxies | quote }}
TALLY_LOG_LEVEL: {{ $v.config.logLevel | quote }}
{{- /* The whole numbers src/settings.def gives a value (_generated.tpl). */}}
{{- include "tally.settingsEnv" . }}
TALLY_RUN_DIR: {{ include "tally.runDir" . | quote }}
TALLY_SOCKET_DIR: {{ include "tally.runDir" . | quote }}
TALLY_LISTEN: "0.0.0.0"
TALLY_PORT: {{ $v.web.port | int64 | quote }}
TALLY_INTERNAL_LISTEN: "0.0.0.0"
TALLY_INTERNAL_PORT: {{ $v.web.internalPort | int64 | quote }}
TALLY_CORS_WRITE_ORIGINS: {{ join "," $v.web.corsWriteOrigins | quote }}
{{- /* lighttpd's connection limits derive from the web container's
       memory limit (scripts/lib.sh, tally_conn_limits; README,
       "Connection limits"); the responders' backlogs follow them. */}}
{{- with dig "resources" "limits" "memory" "" $v.web }}
TALLY_MEMORY_LIMIT: {{ include "tally.bytes" . | quote }}
{{- end }}
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

{{/* Where the admin token's Secret is mounted (admin container). */}}
{{- define "tally.adminTokenDir" -}}
/etc/tally/admin
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

{{/* The memory lighttpd's connection limits need: the least memory the
     web container may be given (the VerticalPodAutoscaler's floor for
     web), from the three figures of tally.web.connectionMemory. */}}
{{- define "tally.web.minMemory" -}}
{{- $m := include "tally.web.connectionMemory" . | fromYaml -}}
{{- $ki := add (mul (int $m.maxConnections) (int $m.perConnectionKi)) (mul (int $m.lighttpdMi) 1024) -}}
{{- if eq (mod $ki 1024) 0 }}{{ printf "%dMi" (div $ki 1024) }}{{ else }}{{ printf "%dKi" $ki }}{{ end -}}
{{- end }}

{{/* How tally.web.minMemory is counted: what lighttpd's connection
     limit needs. lighttpd holds up to TALLY_MAX_CONNECTIONS connections,
     which scripts/lib.sh (tally_conn_limits) derives from the web
     container's memory limit (TALLY_MEMORY_LIMIT, from
     web.resources.limits.memory): (limit x 2/3 - 16 MiB) / 56 KiB, or
     4096 without a limit. A hostile client fills each with headers and a
     partial body: 99 KiB each with 16 KB of headers and 16 KiB of body.
     Counted: 112 KiB a connection and 16 MiB for lighttpd itself, the
     figures of lib.sh (TALLY_CONN_BYTES, TALLY_BASE_BYTES; helm/check
     compares them), so 128Mi gives 633 connections and
     633 x 112 KiB + 16 MiB = 87280Ki (README, "Connection limits"). */}}
{{- define "tally.web.connectionMemory" -}}
{{- $limit := dig "resources" "limits" "memory" "" .Values.web -}}
{{- $perKi := 112 -}}
{{- $baseMi := 16 -}}
{{- $max := 4096 -}}
{{- if $limit -}}
{{- $max = div (sub (div (mul (include "tally.bytes" $limit | int64) 2) 3) (mul $baseMi 1048576)) (mul $perKi 1024) -}}
{{- if lt (int64 $max) 16 }}{{ fail (printf "web.resources.limits.memory %v leaves lighttpd room for %d connections; give it at least %dKi ((16 x %d KiB + %d MiB) x 3/2)" $limit (int64 $max) (div (mul (add (mul 16 $perKi) (mul $baseMi 1024)) 3) 2) $perKi $baseMi) }}{{ end -}}
{{- end -}}
maxConnections: {{ $max }}
perConnectionKi: {{ $perKi }}
lighttpdMi: {{ $baseMi }}
{{- end }}

{{/* "N connections x K KiB + M MiB", the sum behind tally.web.minMemory. */}}
{{- define "tally.web.minMemorySum" -}}
{{- $m := include "tally.web.connectionMemory" . | fromYaml -}}
{{- printf "%d connections x %d KiB + %d MiB" (int $m.maxConnections) (int $m.perConnectionKi) (int $m.lighttpdMi) -}}
{{- end }}

{{/* A Kubernetes quantity (100m, 0.5, 64Mi, 1G; the forms
     values.schema.json allows) as a plain number, for comparisons. */}}
{{- define "tally.quantity" -}}
{{- if or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) }}{{ float64 . }}{{ else -}}
{{- $q := toString . -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $q -}}
{{- $factors := dict "" 1 "m" 0.001 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 -}}
{{- $suffix := trimPrefix $number $q -}}
{{- if not (hasKey $factors $suffix) }}{{ fail (printf "%q is not a quantity the chart understands" $q) }}{{ end -}}
{{- mulf (float64 $number) (get $factors $suffix) -}}
{{- end }}
{{- end }}

{{/* The VerticalPodAutoscaler's per-container settings: "web" and
     "*" (every other container: the responders), each with its
     minAllowed filled in (web's memory: at least tally.web.minMemory),
     as YAML. */}}
{{- define "tally.vpa.policies" -}}
{{- $web := deepCopy .Values.vpa.web -}}
{{- $_ := set $web "minAllowed" (merge (dict) ($web.minAllowed | default dict) (dict "memory" (include "tally.web.minMemory" .))) -}}
{{ toYaml (dict "web" $web "*" .Values.vpa.responders) }}
{{- end }}

{{/* Refuses VerticalPodAutoscaler settings that cannot work. */}}
{{- define "tally.vpa.validate" -}}
{{- $v := .Values.vpa -}}
{{- /* The resources the HPA scales on, read from the HPA itself. */}}
{{- $hpaResources := list -}}
{{- if .Values.autoscaling.enabled }}
{{- $hpa := include (print $.Template.BasePath "/hpa.yaml") . | fromYaml -}}
{{- range $hpa.spec.metrics }}
{{- if eq .type "Resource" }}{{ $hpaResources = append $hpaResources .resource.name }}{{ end }}
{{- end }}
{{- end }}
{{- $key := dict "web" "vpa.web" "*" "vpa.responders" -}}
{{- range $name, $p := include "tally.vpa.policies" . | fromYaml }}
{{- $where := get $key $name -}}
{{- range $p.controlledResources }}
{{- if and (has . $hpaResources) (ne $v.updateMode "Off") }}
{{- fail (printf "%s.controlledResources has %s, which the HPA (autoscaling.enabled) scales on too: the VPA in mode %s would change the %s requests the HPA measures its target against, and each would undo the other. Either set vpa.updateMode to \"Off\" (the VPA only recommends), or leave %s out of vpa.web.controlledResources and vpa.responders.controlledResources (VPA on memory, HPA on CPU), or turn autoscaling off (README, \"Vertical Pod Autoscaler\")" $where . $v.updateMode . .) }}
{{- end }}
{{- end }}
{{- range $resource, $min := $p.minAllowed }}
{{- with get ($p.maxAllowed | default dict) $resource }}
{{- if gt (include "tally.quantity" $min | float64) (include "tally.quantity" . | float64) }}
{{- fail (printf "%s.minAllowed.%s (%v) exceeds %s.maxAllowed.%s (%v)" $where $resource $min $where $resource .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- $floor := include "tally.web.minMemory" . -}}
{{- with $v.web.minAllowed }}{{ with .memory }}
{{- if lt (include "tally.quantity" . | float64) (include "tally.quantity" $floor | float64) }}
{{- fail (printf "vpa.web.minAllowed.memory %v is below %s, the memory lighttpd's connection limits need (%s; README, \"Vertical Pod Autoscaler\"): the VPA would let lighttpd be killed for memory under many connections. Leave it unset (the chart then uses %s) or set at least %s" . $floor (include "tally.web.minMemorySum" $) $floor $floor) }}
{{- end }}
{{- end }}{{ end }}
{{- end }}
