import express, { type RequestHandler } from "express";
import { MalformedBodyError, UnsupportedMediaTypeError } from "../domain/errors";

export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Reads every body as raw bytes (signatures cover the exact bytes), capped at 64 KiB unless the route
 * declares a larger cap (`limitFor`), then parses JSON. A body must be `application/json` (or `+json`);
 * an empty body is allowed where the route allows it.
 */
export function bodyParsing(limitFor: (path: string) => number = () => MAX_BODY_BYTES): RequestHandler[] {
  const readers = new Map<number, RequestHandler>();
  const raw: RequestHandler = (req, res, next) => {
    const limit = limitFor(req.path);
    let reader = readers.get(limit);
    if (!reader) {
      reader = express.raw({ type: () => true, limit });
      readers.set(limit, reader);
    }
    reader(req, res, next);
  };
  const json: RequestHandler = (req, _res, next) => {
    const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    req.rawBody = bytes;
    req.body = undefined;
    if (bytes.length === 0) return next();
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/json" && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
      return next(
        new UnsupportedMediaTypeError(`the body must be application/json, not ${type || "untyped"}`),
      );
    }
    try {
      req.body = JSON.parse(bytes.toString("utf8"));
    } catch {
      return next(new MalformedBodyError("the request body is not valid JSON"));
    }
    next();
  };
  return [raw, json];
}
