{{- define "platform-lib.deployment" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "platform-lib.fullname" . }}
  labels:
    {{- include "platform-lib.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      {{- include "platform-lib.selector" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "platform-lib.selector" . | nindent 8 }}
    spec:
      containers:
        - name: {{ .Chart.Name }}
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
          {{- with .Values.args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- if .Values.port }}
          ports:
            - name: http
              containerPort: {{ .Values.port }}
          {{- end }}
          envFrom:
            - configMapRef:
                name: {{ include "platform-lib.fullname" . }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
{{- end -}}
