{{/*
A TOML writer for leannodes.toml. Helm's own toToml writes every number from the values as a float
(`port = 8080.0`), which LeanNodes refuses for integer keys; this one writes whole numbers as integers.
Tables become [headers], arrays of tables [[headers]], other values inline; null values are left out.
*/}}

{{/* A key, quoted unless it is a bare TOML key. */}}
{{- define "leannodes.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{/* An inline value: string, boolean, number, array or inline table. */}}
{{- define "leannodes.toml.value" -}}
{{- $v := . -}}
{{- if kindIs "string" $v -}}
{{- toJson $v -}}
{{- else if kindIs "bool" $v -}}
{{- ternary "true" "false" $v -}}
{{- else if or (kindIs "float64" $v) (kindIs "float32" $v) -}}
{{- if and (eq (float64 (int64 $v)) (float64 $v)) (lt (float64 $v) 1e15) (gt (float64 $v) -1e15) -}}
{{- int64 $v -}}
{{- else -}}
{{- $v -}}
{{- end -}}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) (kindIs "int32" $v) (kindIs "uint64" $v) -}}
{{- $v -}}
{{- else if kindIs "slice" $v -}}
{{- $items := list -}}
{{- range $v -}}{{- $items = append $items (include "leannodes.toml.value" .) -}}{{- end -}}
[{{ join ", " $items }}]
{{- else if kindIs "map" $v -}}
{{- $items := list -}}
{{- range $k, $item := $v -}}
{{- if not (kindIs "invalid" $item) -}}
{{- $items = append $items (printf "%s = %s" (include "leannodes.toml.key" $k) (include "leannodes.toml.value" $item)) -}}
{{- end -}}
{{- end -}}
{{- if $items -}}{ {{ join ", " $items }} }{{- else -}}{}{{- end -}}
{{- else -}}
{{- fail (printf "leannodes.toml: cannot write %v (%s) as TOML" $v (kindOf $v)) -}}
{{- end -}}
{{- end -}}

{{/* "true" when the value is a non-empty array of tables. */}}
{{- define "leannodes.toml.isTableArray" -}}
{{- if and (kindIs "slice" .) (gt (len .) 0) -}}
{{- $all := true -}}
{{- range . -}}{{- if not (kindIs "map" .) -}}{{- $all = false -}}{{- end -}}{{- end -}}
{{- if $all -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/*
A table: its header, its plain keys, then its sub-tables and arrays of tables.
Arguments: header (e.g. "[server]" or "[[flow]]"), path (the dotted name, keys already quoted), table.
*/}}
{{- define "leannodes.toml.table" -}}
{{- $path := .path -}}
{{- $table := .table -}}
{{ .header }}
{{- range $k, $v := $table }}
{{- if not (or (kindIs "invalid" $v) (kindIs "map" $v) (include "leannodes.toml.isTableArray" $v)) }}
{{ include "leannodes.toml.key" $k }} = {{ include "leannodes.toml.value" $v }}
{{- end }}
{{- end }}
{{- range $k, $v := $table }}
{{- $sub := printf "%s.%s" $path (include "leannodes.toml.key" $k) }}
{{- if kindIs "map" $v }}

{{ include "leannodes.toml.table" (dict "header" (printf "[%s]" $sub) "path" $sub "table" $v) }}
{{- else if include "leannodes.toml.isTableArray" $v }}
{{- range $item := $v }}

{{ include "leannodes.toml.table" (dict "header" (printf "[[%s]]" $sub) "path" $sub "table" $item) }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
