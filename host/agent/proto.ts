// guest/agent/agent.proto, the one definition of the agent's API, compiled by
// protobufjs when first needed: the rpcs of hako.agent.v1.Agent with their
// message types.
import path from 'node:path';
import protobuf from 'protobufjs';
import { repoRoot } from '../native.js';

export const AGENT_PROTO = path.join(repoRoot, 'guest', 'agent', 'agent.proto');
export const AGENT_SERVICE = 'hako.agent.v1.Agent';

export interface AgentRpc {
  /** As in agent.proto, e.g. "ReadStdout". */
  name: string;
  request: protobuf.Type;
  response: protobuf.Type;
}

let rpcs: ReadonlyMap<string, AgentRpc> | undefined;

/** Every rpc of the Agent service by name. */
export function agentRpcs(): ReadonlyMap<string, AgentRpc> {
  if (rpcs === undefined) {
    let root: protobuf.Root;
    try {
      root = protobuf.loadSync(AGENT_PROTO);
      root.resolveAll();
    } catch (e) {
      throw new Error(`cannot load the agent API from ${AGENT_PROTO}: ${(e as Error).message}`, { cause: e });
    }
    const service = root.lookupService(AGENT_SERVICE);
    rpcs = new Map(service.methodsArray.map((m) => [m.name, { name: m.name, request: m.resolvedRequestType!, response: m.resolvedResponseType! }]));
  }
  return rpcs;
}

/** The rpc named `name`; a typo is a programming error. */
export function agentRpc(name: string): AgentRpc {
  const rpc = agentRpcs().get(name);
  if (rpc === undefined) throw new Error(`${AGENT_SERVICE} has no rpc ${name} (see ${AGENT_PROTO})`);
  return rpc;
}
