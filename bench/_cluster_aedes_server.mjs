// The JavaScript anchor of the cluster benchmark (bench/_cluster_peers.ts): one aedes node whose messages go
// between nodes through mqemitter-redis and whose sessions, subscriptions, retained messages and offline queues
// live in Redis through aedes-persistence-redis, all at the versions pinned in deno.json. Defaults are kept, as
// a user would run it. Runs on Node (from a directory where npm installed the three packages) or on Deno.
// Usage: server.mjs REDIS_PORT; prints "aedes listening on 127.0.0.1:PORT".
import { createServer } from "node:net";
import process from "node:process";
import { Aedes } from "aedes";
import mqemitterRedis from "mqemitter-redis";
import aedesPersistenceRedis from "aedes-persistence-redis";

const redis = { host: "127.0.0.1", port: Number(process.argv[2]) };
const aedes = await Aedes.createBroker({
  mq: mqemitterRedis(redis),
  persistence: aedesPersistenceRedis(redis),
});
const server = createServer(aedes.handle);
server.listen(0, "127.0.0.1", () => {
  console.log("aedes listening on 127.0.0.1:" + server.address().port);
});
process.on("SIGTERM", () => process.exit(0));
