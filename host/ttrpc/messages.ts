// The ttRPC envelope messages (containerd/ttrpc request.proto), defined as
// .proto text and compiled by protobufjs at load time, and the protobufjs
// encode/decode every payload codec here uses.
import protobuf from 'protobufjs';

// Status and Any are wire-identical to google.rpc.Status and google.protobuf.Any
// (only field numbers and types travel), so they share the ttrpc package here.
const PROTO = `
syntax = "proto3";
package ttrpc;

message KeyValue {
  string key = 1;
  string value = 2;
}

message Request {
  string service = 1;
  string method = 2;
  bytes payload = 3;
  int64 timeout_nano = 4;
  repeated KeyValue metadata = 5;
}

message Any {
  string type_url = 1;
  bytes value = 2;
}

message Status {
  int32 code = 1;
  string message = 2;
  repeated Any details = 3;
}

message Response {
  Status status = 1;
  bytes payload = 2;
}
`;

export interface KeyValue {
  key: string;
  value: string;
}

export interface Request {
  service: string;
  method: string;
  payload: Uint8Array;
  /** 0: no deadline. */
  timeoutNano: number;
  metadata: KeyValue[];
}

export interface Status {
  code: number;
  message: string;
  details: { typeUrl: string; value: Uint8Array }[];
}

export interface Response {
  /** Absent or code 0 (OK) on success. */
  status?: Status | null;
  payload: Uint8Array;
}

const root = protobuf.parse(PROTO).root;
const RequestType = root.lookupType('ttrpc.Request');
const ResponseType = root.lookupType('ttrpc.Response');

/** Encodes a plain object (camelCase fields) as `type`; throws a TypeError naming the field of a wrong type. */
export function encodeMessage(type: protobuf.Type, value: object): Uint8Array {
  const problem = type.verify(value);
  if (problem !== null) throw new TypeError(`${type.name}: ${problem}`);
  return type.encode(type.fromObject(value)).finish();
}

/** Decodes `type` into a plain object with every field present and 64-bit integers as numbers; throws on malformed bytes. */
export function decodeMessage<T>(type: protobuf.Type, bytes: Uint8Array): T {
  return type.toObject(type.decode(bytes), { defaults: true, longs: Number, arrays: true }) as T;
}

export const encodeRequest = (request: Request): Uint8Array => encodeMessage(RequestType, request);
export const decodeRequest = (bytes: Uint8Array): Request => decodeMessage<Request>(RequestType, bytes);
export const encodeResponse = (response: Response): Uint8Array => encodeMessage(ResponseType, response);
export const decodeResponse = (bytes: Uint8Array): Response => decodeMessage<Response>(ResponseType, bytes);
