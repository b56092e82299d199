#!/usr/bin/env node
// SPDX-License-Identifier: MIT
//
// storagetool: the other party in batchd's queue and table tests.  A small
// command line over the official Azure SDKs for JavaScript
// (@azure/storage-queue, @azure/data-tables), so that what batchd writes
// is read, and what it reads is written, by Microsoft's own clients.
//
//   storagetool.js queue-create QUEUE
//   storagetool.js queue-put QUEUE FILE        the file's UTF-8 text, as is
//   storagetool.js queue-put-many QUEUE FILE   the file is a JSON array of
//                                              strings: puts each as is
//   storagetool.js queue-count QUEUE           approximate message count
//   storagetool.js queue-texts QUEUE           JSON array of the texts of
//                                              every message (receives
//                                              them all, hiding each 30 s)
//   storagetool.js queue-take QUEUE [N]        receives up to N (32) and
//                                              deletes them; prints a JSON
//                                              array of {id, text,
//                                              dequeueCount}
//   storagetool.js queue-peek QUEUE            JSON array of texts
//   storagetool.js table-create TABLE
//   storagetool.js table-get TABLE PK RK       JSON: every property as
//                                              {value, type} (Edm types)
//   storagetool.js table-put-typed TABLE PK RK upserts an entity with a
//                                              property of each type
//   storagetool.js table-count TABLE PK        entities in partition PK
//   storagetool.js account-sas SECONDS         an account SAS query (no '?')
//                                              for the queue and table
//                                              services, every permission,
//                                              expiring in SECONDS (may be
//                                              negative)
//
// The connection string comes from AZURE_STORAGE_CONNECTION_STRING.
// Exits 1 with the error on stderr when anything fails.

"use strict";

const fs = require("fs");
const {
  QueueClient,
  StorageSharedKeyCredential,
  AccountSASPermissions,
  AccountSASResourceTypes,
  generateAccountSASQueryParameters,
} = require("@azure/storage-queue");
const { TableClient, odata } = require("@azure/data-tables");

const conn = process.env.AZURE_STORAGE_CONNECTION_STRING;
const [cmd, ...args] = process.argv.slice(2);

function die(msg) {
  process.stderr.write(`storagetool: ${msg}\n`);
  process.exit(1);
}

function need(n) {
  if (args.length < n) die(`${cmd}: needs ${n} arguments`);
}

const queue = (name) => new QueueClient(conn, name);
const table = (name) =>
  TableClient.fromConnectionString(conn, name, { allowInsecureConnection: true });

const commands = {
  "queue-create": async () => {
    need(1);
    await queue(args[0]).createIfNotExists();
  },
  "queue-put": async () => {
    need(2);
    await queue(args[0]).sendMessage(fs.readFileSync(args[1], "utf8"));
  },
  "queue-put-many": async () => {
    need(2);
    const q = queue(args[0]);
    for (const text of JSON.parse(fs.readFileSync(args[1], "utf8"))) await q.sendMessage(text);
  },
  "queue-count": async () => {
    need(1);
    const p = await queue(args[0]).getProperties();
    process.stdout.write(`${p.approximateMessagesCount}\n`);
  },
  "queue-texts": async () => {
    need(1);
    const q = queue(args[0]);
    const out = [];
    for (;;) {
      const r = await q.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 30 });
      if (r.receivedMessageItems.length === 0) break;
      for (const m of r.receivedMessageItems) out.push(m.messageText);
    }
    process.stdout.write(JSON.stringify(out) + "\n");
  },
  "queue-take": async () => {
    need(1);
    const q = queue(args[0]);
    const n = args[1] ? parseInt(args[1], 10) : 32;
    const r = await q.receiveMessages({ numberOfMessages: n, visibilityTimeout: 60 });
    const out = [];
    for (const m of r.receivedMessageItems) {
      out.push({ id: m.messageId, text: m.messageText, dequeueCount: m.dequeueCount });
      await q.deleteMessage(m.messageId, m.popReceipt);
    }
    process.stdout.write(JSON.stringify(out) + "\n");
  },
  "queue-peek": async () => {
    need(1);
    const r = await queue(args[0]).peekMessages({ numberOfMessages: 32 });
    process.stdout.write(JSON.stringify(r.peekedMessageItems.map((m) => m.messageText)) + "\n");
  },
  "table-create": async () => {
    need(1);
    await table(args[0]).createTable();
  },
  "table-get": async () => {
    need(3);
    const e = await table(args[0]).getEntity(args[1], args[2], { disableTypeConversion: true });
    const out = {};
    for (const [k, v] of Object.entries(e)) {
      if (k === "odata.metadata" || k === "etag" || k === "timestamp") continue;
      out[k] = v;
    }
    process.stdout.write(JSON.stringify(out) + "\n");
  },
  "table-put-typed": async () => {
    need(3);
    await table(args[0]).upsertEntity(
      {
        partitionKey: args[1],
        rowKey: args[2],
        name: "üñí <&> 'q'",
        small: 42,
        negative: -7,
        memoryBytes: { value: "17179869184", type: "Int64" },
        ratio: 0.25,
        enabled: true,
        startTime: new Date("2024-01-02T03:04:05.123Z"),
        lastHeartbeat: new Date("2024-05-06T07:08:09Z"),
        blob: new Uint8Array([1, 2, 3, 250]),
        guid: { value: "c9da6455-213d-42c9-9a79-3e9149a57833", type: "Guid" },
      },
      "Replace"
    );
  },
  "table-count": async () => {
    need(2);
    let n = 0;
    const it = table(args[0]).listEntities({
      queryOptions: { filter: odata`PartitionKey eq ${args[1]}` },
    });
    for await (const e of it) {
      void e;
      n++;
    }
    process.stdout.write(`${n}\n`);
  },
  "account-sas": async () => {
    need(1);
    const parts = {};
    for (const p of conn.split(";")) {
      const i = p.indexOf("=");
      if (i > 0) parts[p.slice(0, i).trim().toLowerCase()] = p.slice(i + 1).trim();
    }
    if (!parts.accountname || !parts.accountkey) die("the connection string has no account key");
    const cred = new StorageSharedKeyCredential(parts.accountname, parts.accountkey);
    const now = Date.now();
    const sas = generateAccountSASQueryParameters(
      {
        startsOn: new Date(now - 3600e3),
        expiresOn: new Date(now + parseInt(args[0], 10) * 1000),
        permissions: AccountSASPermissions.parse("rwdlacup"),
        services: "qt",
        resourceTypes: AccountSASResourceTypes.parse("sco").toString(),
      },
      cred
    );
    process.stdout.write(sas.toString() + "\n");
  },
};

if (!commands[cmd]) die(`unknown command "${cmd}"`);
if (!conn) die("AZURE_STORAGE_CONNECTION_STRING is not set");
commands[cmd]().catch((e) => die(`${cmd}: ${e.message || e}`));
