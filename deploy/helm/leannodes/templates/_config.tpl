{{/* leannodes.toml, from the values (keys: docs/configuration.md). */}}

{{/* The store URL of `storage` (the store reads query values as written: the schema keeps them plain). */}}
{{- define "leannodes.storeUrl" -}}
{{- $s := .Values.storage -}}
{{- if eq $s.type "sqlite" -}}
sqlite://{{ include "leannodes.stateDir" . }}/leannodes.db
{{- else if eq $s.type "postgres" -}}
{{- if regexMatch "^postgres(ql)?://[^/@]*:[^/@]*@" $s.postgres.url -}}
{{- fail "storage.postgres.url must not hold the password: put it into the Secret storage.postgres.existingSecret (key storage.postgres.passwordKey)" -}}
{{- end -}}
{{- $s.postgres.url -}}
{{- else if eq $s.type "dynamodb" -}}
{{- $query := list -}}
{{- with $s.dynamodb.region -}}{{- $query = append $query (printf "region=%s" .) -}}{{- end -}}
{{- with $s.dynamodb.endpoint -}}{{- $query = append $query (printf "endpoint=%s" .) -}}{{- end -}}
dynamodb://{{ $s.dynamodb.table }}{{ if $query }}?{{ join "&" $query }}{{ end }}
{{- end -}}
{{- end -}}

{{/* The [server] table: what the chart owns (listeners, store, driver, TLS) over config.server. */}}
{{- define "leannodes.config.serverTable" -}}
{{- $addr := .Values.bindAddress -}}
{{- $owned := dict
  "listen" (list (printf "%s:%s" $addr (include "leannodes.port.proxy" .)))
  "admin_listen" (printf "%s:%s" $addr (include "leannodes.port.admin" .))
  "store" (include "leannodes.storeUrl" .)
  "driver" "kubernetes" -}}
{{- if .Values.callouts.check.enabled -}}
{{- $_ := set $owned "check_listen" (printf "%s:%s" $addr (include "leannodes.port.check" .)) -}}
{{- end -}}
{{- if .Values.callouts.extAuthz.enabled -}}
{{- $_ := set $owned "ext_authz_listen" (printf "%s:%s" $addr (include "leannodes.port.extAuthz" .)) -}}
{{- end -}}
{{- if .Values.callouts.tokenSecret.name -}}
{{- $_ := set $owned "check_token" "env:LEANNODES_CHECK_TOKEN" -}}
{{- end -}}
{{- if .Values.tls.enabled -}}
{{- $certs := list -}}
{{- range (include "leannodes.tlsSecrets" . | fromJsonArray) -}}
{{- $dir := printf "%s/%s" (include "leannodes.tlsDir" $) . -}}
{{- $certs = append $certs (dict "cert" (printf "%s/tls.crt" $dir) "key" (printf "%s/tls.key" $dir)) -}}
{{- end -}}
{{- $_ := set $owned "tls" (list (dict "listen" (printf "%s:%s" $addr (include "leannodes.port.tls" .)) "certs" $certs)) -}}
{{- end -}}
{{- toJson (merge $owned (deepCopy (default (dict) .Values.config.server))) -}}
{{- end -}}

{{/* The part of leannodes.toml that is read at start: [server] and [[notification]]. */}}
{{- define "leannodes.config.startup" -}}
{{- $server := include "leannodes.config.serverTable" . | fromJson -}}
{{ include "leannodes.toml.table" (dict "header" "[server]" "path" "server" "table" $server) }}
{{- range .Values.config.notifications }}

{{ include "leannodes.toml.table" (dict "header" "[[notification]]" "path" "notification" "table" .) }}
{{- end }}
{{- end -}}

{{/* The whole file. */}}
{{- define "leannodes.config" -}}
# leannodes.toml, rendered by the Helm chart from its values (keys: docs/configuration.md).
{{ include "leannodes.config.startup" . }}
{{- with .Values.config.defaults }}

{{ include "leannodes.toml.table" (dict "header" "[defaults]" "path" "defaults" "table" .) }}
{{- end }}
{{- range .Values.config.flows }}

{{ include "leannodes.toml.table" (dict "header" "[[flow]]" "path" "flow" "table" .) }}
{{- end }}
{{ end -}}
