// The hybrid vsock handshake (Firecracker's protocol): a host program
// connects to the VM's Unix socket and sends "CONNECT <guest port>\n"; once
// the guest accepted, the VM answers "OK <host port>\n" and the socket then
// carries the stream. Both sides of the line format live here.

/** A CONNECT line longer than this (newline included) is refused. */
export const MAX_HANDSHAKE_LINE = 32;

/** What a connecting client has sent so far. */
export type ConnectRequest =
  | { kind: 'port'; port: number } // a whole, valid line
  | { kind: 'partial' }            // no newline yet, still short enough
  | { kind: 'invalid' };

const CONNECT_LINE = /^CONNECT ([0-9]{1,10})\n$/;
const OK_LINE = /^OK ([0-9]{1,10})\n$/;

/** A decimal u32, or undefined. */
function u32(digits: string | undefined): number | undefined {
  if (digits === undefined) return undefined;
  const value = Number(digits);
  return value <= 0xffffffff ? value : undefined;
}

/** Parses the bytes a client sent (the line is read byte by byte, so nothing follows its newline). */
export function parseConnectLine(bytes: Uint8Array): ConnectRequest {
  const newline = bytes.indexOf(0x0a);
  if (newline < 0) return bytes.length < MAX_HANDSHAKE_LINE ? { kind: 'partial' } : { kind: 'invalid' };
  if (newline !== bytes.length - 1) return { kind: 'invalid' };
  const port = u32(CONNECT_LINE.exec(Buffer.from(bytes).toString('latin1'))?.[1]);
  return port === undefined ? { kind: 'invalid' } : { kind: 'port', port };
}

export function connectLine(port: number): string {
  return `CONNECT ${port}\n`;
}

export function okLine(hostPort: number): string {
  return `OK ${hostPort}\n`;
}

/** The host port of an "OK <port>\n" line, or undefined for anything else. */
export function parseOkLine(line: string): number | undefined {
  return u32(OK_LINE.exec(line)?.[1]);
}
