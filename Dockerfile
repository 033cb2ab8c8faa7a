FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
COPY profiles ./profiles
# The web console's pages, scripts and styles, served by the service itself.
COPY console ./console
# The build also parses the built-in YAML ahead of time (scripts/parse-builtin-yaml.mjs).
COPY scripts ./scripts
RUN npm ci && npm prune --omit=dev
ENV TCP_NODELAY=1
EXPOSE 11112 8080
CMD ["node", "bin/deid.js", "serve"]
