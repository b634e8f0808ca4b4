// The typed client of the guest agent (guest/agent/agent.proto) over one ttRPC
// connection, e.g. new AgentClient(await connectVsock(udsPath, AGENT_PORT)).
// Responses come from the guest, which may be hostile: a malformed one fails
// its call with INTERNAL, nothing more.
import type { Duplex } from 'node:stream';
import { Client, type CallOptions } from '../ttrpc/client.js';
import { decodeMessage, encodeMessage } from '../ttrpc/messages.js';
import { Code, TtrpcError } from '../ttrpc/status.js';
import type * as m from './messages.js';
import { AGENT_SERVICE, agentRpc } from './proto.js';

/** The vsock port the agent listens on. */
export const AGENT_PORT = 1024;

export class AgentClient {
  private readonly client: Client;

  /** Takes over `socket`, a connection to the agent. */
  constructor(socket: Duplex) {
    this.client = new Client(socket);
  }

  /** Closes the connection; pending calls fail with UNAVAILABLE. */
  close(): void {
    this.client.close();
  }

  get closed(): boolean {
    return this.client.closed;
  }

  /** Called once when the connection ends (the agent or the VM went away, or close()). */
  onClose(listener: (error: TtrpcError) => void): void {
    this.client.onClose(listener);
  }

  version(options?: CallOptions): Promise<m.VersionResponse> {
    return this.call('Version', {}, options);
  }

  createContainer(request: m.CreateContainerRequest, options?: CallOptions): Promise<m.CreateContainerResponse> {
    return this.call('CreateContainer', request, options);
  }

  startContainer(request: m.StartContainerRequest, options?: CallOptions): Promise<m.StartContainerResponse> {
    return this.call('StartContainer', request, options);
  }

  execProcess(request: m.ExecProcessRequest, options?: CallOptions): Promise<m.ExecProcessResponse> {
    return this.call('ExecProcess', request, options);
  }

  signalProcess(request: m.SignalProcessRequest, options?: CallOptions): Promise<m.SignalProcessResponse> {
    return this.call('SignalProcess', request, options);
  }

  /** Resolves when the process has exited. */
  waitProcess(request: m.WaitProcessRequest, options?: CallOptions): Promise<m.WaitProcessResponse> {
    return this.call('WaitProcess', request, options);
  }

  writeStdin(request: m.WriteStdinRequest, options?: CallOptions): Promise<m.WriteStdinResponse> {
    return this.call('WriteStdin', request, options);
  }

  /** Resolves when output is there; empty data is the end of the stream. Keep at most one outstanding per stream. */
  readStdout(request: m.ReadStreamRequest, options?: CallOptions): Promise<m.ReadStreamResponse> {
    return this.call('ReadStdout', request, options);
  }

  /** As readStdout, for stderr. */
  readStderr(request: m.ReadStreamRequest, options?: CallOptions): Promise<m.ReadStreamResponse> {
    return this.call('ReadStderr', request, options);
  }

  closeStdin(request: m.CloseStdinRequest, options?: CallOptions): Promise<m.CloseStdinResponse> {
    return this.call('CloseStdin', request, options);
  }

  resizeTty(request: m.ResizeTtyRequest, options?: CallOptions): Promise<m.ResizeTtyResponse> {
    return this.call('ResizeTty', request, options);
  }

  statsContainer(request: m.StatsContainerRequest, options?: CallOptions): Promise<m.StatsContainerResponse> {
    return this.call('StatsContainer', request, options);
  }

  listProcesses(request: m.ListProcessesRequest, options?: CallOptions): Promise<m.ListProcessesResponse> {
    return this.call('ListProcesses', request, options);
  }

  removeContainer(request: m.RemoveContainerRequest, options?: CallOptions): Promise<m.RemoveContainerResponse> {
    return this.call('RemoveContainer', request, options);
  }

  /** Resolves once every process of the container is frozen. */
  pauseContainer(request: m.PauseContainerRequest, options?: CallOptions): Promise<m.PauseContainerResponse> {
    return this.call('PauseContainer', request, options);
  }

  resumeContainer(request: m.ResumeContainerRequest, options?: CallOptions): Promise<m.ResumeContainerResponse> {
    return this.call('ResumeContainer', request, options);
  }

  /** Changes the container's cgroup limits; INVALID_ARGUMENT names a bad field of the resources JSON. */
  updateContainer(request: m.UpdateContainerRequest, options?: CallOptions): Promise<m.UpdateContainerResponse> {
    return this.call('UpdateContainer', request, options);
  }

  /** Resolves when some container's cgroup records an OOM kill. */
  getOOMEvent(options?: CallOptions): Promise<m.GetOOMEventResponse> {
    return this.call('GetOOMEvent', {}, options);
  }

  /** Errors are TtrpcErrors whose message starts with "agent <Rpc>". */
  private async call<T>(name: string, request: object, options?: CallOptions): Promise<T> {
    const rpc = agentRpc(name);
    const context = `agent ${name}`;
    let payload: Uint8Array;
    try {
      payload = encodeMessage(rpc.request, request);
    } catch (e) {
      throw new TtrpcError(Code.INVALID_ARGUMENT, (e as Error).message, { cause: e, context });
    }
    let response: Buffer;
    try {
      response = await this.client.call(AGENT_SERVICE, name, payload, options);
    } catch (e) {
      if (!(e instanceof TtrpcError)) throw e;
      throw new TtrpcError(e.code, e.statusMessage, { cause: e, context });
    }
    try {
      return decodeMessage<T>(rpc.response, response);
    } catch (e) {
      throw new TtrpcError(Code.INTERNAL, `malformed ${rpc.response.name}: ${(e as Error).message}`, { cause: e, context });
    }
  }
}
