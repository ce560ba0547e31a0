{{/* Names, labels and the fixed container ports of the LeanNodes chart. */}}

{{- define "leannodes.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the release name, or RELEASE-leannodes when it does not contain the chart's. */}}
{{- define "leannodes.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "leannodes.selectorLabels" -}}
app.kubernetes.io/name: {{ include "leannodes.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "leannodes.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "leannodes.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: leannodes
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "leannodes.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "leannodes.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "leannodes.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Container ports: fixed, the Services map their own ports onto them. */}}
{{- define "leannodes.port.proxy" -}}8080{{- end -}}
{{- define "leannodes.port.tls" -}}8443{{- end -}}
{{- define "leannodes.port.admin" -}}9090{{- end -}}
{{- define "leannodes.port.check" -}}9095{{- end -}}
{{- define "leannodes.port.extAuthz" -}}9191{{- end -}}

{{/* Where the pod mounts things; the binary's path is the image's (Dockerfile). */}}
{{- define "leannodes.binary" -}}/usr/local/bin/leannodes{{- end -}}
{{- define "leannodes.configDir" -}}/etc/leannodes{{- end -}}
{{- define "leannodes.tlsDir" -}}/etc/leannodes-tls{{- end -}}
{{- define "leannodes.stateDir" -}}/var/lib/leannodes{{- end -}}

{{/* The TLS Secrets: the default certificate first. */}}
{{- define "leannodes.tlsSecrets" -}}
{{- toJson (prepend .Values.tls.extraSecretNames .Values.tls.secretName | uniq) -}}
{{- end -}}
