# The demo chat server (client/node/examples/demo/chat-server.cjs) with the
# siobridge adapter built from this repository, for compose.yaml. Build context:
# the repository root.
FROM node:20-bookworm-slim
WORKDIR /src/client/node
COPY proto/siobridge/v1/bridge.proto /src/proto/siobridge/v1/bridge.proto
COPY client/node/package.json client/node/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY client/node/ ./
COPY deploy/compose/compose-client.cjs examples/demo/compose-client.cjs
RUN npm run build
USER node
ENV PORT=3000
EXPOSE 3000
CMD ["node", "examples/demo/chat-server.cjs"]
