FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
COPY profiles ./profiles
RUN npm ci && npm prune --omit=dev
ENV TCP_NODELAY=1
EXPOSE 11112 8080
CMD ["node", "bin/deid.js", "serve"]
