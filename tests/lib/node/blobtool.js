#!/usr/bin/env node
// SPDX-License-Identifier: MIT
//
// blobtool: the other party in batchd's storage tests.  A small command
// line over the official Azure Storage Blob SDK (@azure/storage-blob), so
// that what batchd uploads is checked, and what it downloads is prepared,
// by Microsoft's own client rather than by batchd's code.
//
//   blobtool.js create-container
//   blobtool.js delete-container
//   blobtool.js upload FILE BLOB [--md5] [--no-md5] [--content-type T]
//                                [--block-size BYTES]
//   blobtool.js upload-many PREFIX COUNT      COUNT tiny blobs PREFIX00000...
//   blobtool.js download BLOB FILE
//   blobtool.js md5 BLOB                      the stored Content-MD5 (base64)
//   blobtool.js set-md5 BLOB BASE64           overwrite the stored Content-MD5
//   blobtool.js props BLOB                    JSON: properties and metadata
//   blobtool.js list [PREFIX]                 names, one a line
//   blobtool.js sas-container PERMS EXPIRY    prints a container SAS URL
//   blobtool.js sas-blob BLOB PERMS EXPIRY    prints a blob SAS URL
//
// EXPIRY is an ISO 8601 time or a number of seconds from now ("3600",
// "-60" for one already expired).  The connection string comes from
// AZURE_STORAGE_CONNECTION_STRING (Azurite's UseDevelopmentStorage=true by
// default), the container from BLOBTOOL_CONTAINER ("test" by default).
// Exits 1 with the error on stderr when anything fails.

"use strict";

const crypto = require("crypto");
const fs = require("fs");
const {
  BlobServiceClient,
  ContainerSASPermissions,
  BlobSASPermissions,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential,
} = require("@azure/storage-blob");

const conn = process.env.AZURE_STORAGE_CONNECTION_STRING || "UseDevelopmentStorage=true";
const containerName = process.env.BLOBTOOL_CONTAINER || "test";
const service = BlobServiceClient.fromConnectionString(conn);
const container = service.getContainerClient(containerName);

function die(msg) {
  process.stderr.write(`blobtool: ${msg}\n`);
  process.exit(1);
}

// The account name and key of the connection string, for signing SAS.
function sharedKey() {
  const parts = {};
  for (const p of conn.split(";")) {
    const i = p.indexOf("=");
    if (i > 0) parts[p.slice(0, i).trim().toLowerCase()] = p.slice(i + 1).trim();
  }
  if (parts.usedevelopmentstorage === "true")
    return new StorageSharedKeyCredential("devstoreaccount1",
      "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==");
  if (!parts.accountname || !parts.accountkey) die("the connection string has no account key");
  return new StorageSharedKeyCredential(parts.accountname, parts.accountkey);
}

function expiry(s) {
  if (/^-?\d+$/.test(s)) return new Date(Date.now() + Number(s) * 1000);
  const d = new Date(s);
  if (isNaN(d.getTime())) die(`bad expiry ${s}`);
  return d;
}

// Parses "--name value" and "--flag" options after the positional ones.
function options(args, flags) {
  const pos = [];
  const opt = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith("--")) {
      const name = a.slice(2);
      if (flags.includes(name)) opt[name] = true;
      else if (i + 1 < args.length) opt[name] = args[++i];
      else die(`${a} needs a value`);
    } else pos.push(a);
  }
  return { pos, opt };
}

async function upload(args) {
  const { pos, opt } = options(args, ["md5", "no-md5"]);
  if (pos.length !== 2) die("usage: upload FILE BLOB [--md5] [--content-type T] [--block-size N]");
  const [file, name] = pos;
  const block = container.getBlockBlobClient(name);
  const headers = {};
  if (opt["content-type"]) headers.blobContentType = opt["content-type"];
  if (opt.md5) {
    // The whole file's MD5 as the blob's Content-MD5, which the SDK does
    // not set by itself for uploads in blocks.
    const h = crypto.createHash("md5");
    await new Promise((resolve, reject) => {
      fs.createReadStream(file).on("data", (d) => h.update(d)).on("end", resolve).on("error", reject);
    });
    headers.blobContentMD5 = h.digest();
  }
  const blockSize = opt["block-size"] ? Number(opt["block-size"]) : 8 * 1024 * 1024;
  await block.uploadFile(file, {
    blobHTTPHeaders: headers,
    blockSize,
    maxSingleShotSize: opt["block-size"] ? blockSize : 32 * 1024 * 1024,
    concurrency: 8,
  });
  if (opt["no-md5"]) {
    // A single-shot upload stores an MD5 on its own: clear it.
    const p = await block.getProperties();
    await block.setHTTPHeaders({ blobContentType: p.contentType });
  }
}

async function uploadMany(args) {
  if (args.length !== 2) die("usage: upload-many PREFIX COUNT");
  const [prefix, countText] = args;
  const count = Number(countText);
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      const name = `${prefix}${String(i).padStart(5, "0")}`;
      const body = `blob ${i}\n`;
      await container.getBlockBlobClient(name).upload(body, Buffer.byteLength(body));
    }
  }
  await Promise.all(Array.from({ length: 32 }, worker));
}

async function main() {
  const [cmd, ...args] = process.argv.slice(2);
  switch (cmd) {
    case "create-container":
      await container.createIfNotExists();
      break;
    case "delete-container":
      await container.deleteIfExists();
      break;
    case "upload":
      await upload(args);
      break;
    case "upload-many":
      await uploadMany(args);
      break;
    case "download":
      if (args.length !== 2) die("usage: download BLOB FILE");
      await container.getBlobClient(args[0]).downloadToFile(args[1]);
      break;
    case "md5": {
      if (args.length !== 1) die("usage: md5 BLOB");
      const p = await container.getBlobClient(args[0]).getProperties();
      console.log(p.contentMD5 ? Buffer.from(p.contentMD5).toString("base64") : "");
      break;
    }
    case "set-md5": {
      if (args.length !== 2) die("usage: set-md5 BLOB BASE64");
      const b = container.getBlobClient(args[0]);
      const p = await b.getProperties();
      await b.setHTTPHeaders({
        blobContentType: p.contentType,
        blobContentMD5: Buffer.from(args[1], "base64"),
      });
      break;
    }
    case "props": {
      if (args.length !== 1) die("usage: props BLOB");
      const p = await container.getBlobClient(args[0]).getProperties();
      console.log(JSON.stringify({
        contentLength: p.contentLength,
        contentType: p.contentType,
        contentMD5: p.contentMD5 ? Buffer.from(p.contentMD5).toString("base64") : null,
        contentEncoding: p.contentEncoding || null,
        contentLanguage: p.contentLanguage || null,
        contentDisposition: p.contentDisposition || null,
        cacheControl: p.cacheControl || null,
        blobType: p.blobType,
        metadata: p.metadata || {},
      }));
      break;
    }
    case "list":
      for await (const b of container.listBlobsFlat({ prefix: args[0] || undefined }))
        console.log(b.name);
      break;
    case "sas-container": {
      if (args.length !== 2) die("usage: sas-container PERMS EXPIRY");
      const sas = generateBlobSASQueryParameters({
        containerName,
        permissions: ContainerSASPermissions.parse(args[0]),
        startsOn: new Date(Date.now() - 15 * 60 * 1000),
        expiresOn: expiry(args[1]),
      }, sharedKey()).toString();
      console.log(`${container.url}?${sas}`);
      break;
    }
    case "sas-blob": {
      if (args.length !== 3) die("usage: sas-blob BLOB PERMS EXPIRY");
      const sas = generateBlobSASQueryParameters({
        containerName,
        blobName: args[0],
        permissions: BlobSASPermissions.parse(args[1]),
        startsOn: new Date(Date.now() - 15 * 60 * 1000),
        expiresOn: expiry(args[2]),
      }, sharedKey()).toString();
      console.log(`${container.getBlobClient(args[0]).url}?${sas}`);
      break;
    }
    default:
      die("usage: blobtool.js create-container|delete-container|upload|upload-many|download|md5|set-md5|props|list|sas-container|sas-blob ...");
  }
}

main().catch((e) => die(e && e.message ? e.message.split("\n")[0] : String(e)));
