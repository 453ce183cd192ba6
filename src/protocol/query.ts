// Query values as kube-apiserver reads them: the one home for booleans and lists in a Kubernetes
// request's query, used by the request parser (model), the exec options (here) and the endpoint.
//
// What the API server does (k8s.io/apimachinery pkg/runtime/conversion.go, used by the generated
// url.Values conversions of ListOptions, PodExecOptions, PodLogOptions, PatchOptions...):
//   - a boolean is read from its FIRST value only; absent is false; "0" and "false" in any case are
//     false; ANY other value is true: "", "yes", "f" and "F" included. It never refuses a boolean.
//   - `Convert_Slice_string_To_Slice_int32` (PodPortForwardOptions.ports) splits every value on ","
//     and parses each piece with strconv.ParseUint(piece, 10, 16); the kubelet refuses port 0.
//   - `[]string` fields (PodExecOptions.command, dryRun) take the values as they are: no splitting.
//   - parameter order across keys means nothing; the order of one key's values is kept.
//
// Clients write booleans the way their language prints them: Go `true`/`false`, Python `True`/
// `False`, some `1`/`0`. The bastion accepts exactly the spellings where Go's strconv.ParseBool and
// the API server agree, and refuses the rest, so no client can mean one thing while the API server
// reads another: `f`/`F` (ParseBool: false, API server: true) and values ParseBool refuses (`yes`,
// ``, `tRuE`), which the API server silently reads as true.

/** Spellings of true that strconv.ParseBool and the API server both read as true. */
export const QUERY_TRUE: readonly string[] = ['1', 't', 'T', 'TRUE', 'true', 'True'];
/** Spellings of false that strconv.ParseBool and the API server both read as false. */
export const QUERY_FALSE: readonly string[] = ['0', 'FALSE', 'false', 'False'];
/** strconv.ParseBool reads these as false, the API server as true: refused as ambiguous. */
export const QUERY_BOOL_DISAGREE: readonly string[] = ['f', 'F'];

export type QueryValue<T> = { ok: true; value: T } | { ok: false; parameter: string; message: string };

function refused(parameter: string, message: string): { ok: false; parameter: string; message: string } {
  return { ok: false, parameter, message };
}

/**
 * What the API server makes of a boolean parameter's values (Convert_Slice_string_To_bool): the
 * first value decides; only "0" and case-insensitive "false" are false. Used where the query is
 * already known to be accepted (or to play the API server, as the simulator does).
 */
export function apiServerBool(values: readonly string[]): boolean {
  const first = values[0];
  if (first === undefined) return false;
  return !(first === '0' || first.toLowerCase() === 'false');
}

/**
 * One boolean parameter as the bastion accepts it: absent is false; one value from QUERY_TRUE or
 * QUERY_FALSE; anything else (a repeat, `f`, `yes`, an empty value) is refused with a message naming
 * the parameter. Whatever it accepts, apiServerBool reads the same way.
 */
export function queryBool(params: URLSearchParams, parameter: string): QueryValue<boolean> {
  const values = params.getAll(parameter);
  if (values.length === 0) return { ok: true, value: false };
  if (values.length > 1) return refused(parameter, `the query parameter "${parameter}" is given more than once`);
  const value = values[0] as string;
  if (QUERY_TRUE.includes(value)) return { ok: true, value: true };
  if (QUERY_FALSE.includes(value)) return { ok: true, value: false };
  const why = QUERY_BOOL_DISAGREE.includes(value)
    ? 'strconv.ParseBool reads it as false but the API server as true'
    : 'the API server would read it as true, a client as something else';
  return refused(parameter, `${parameter}=${JSON.stringify(value)} is not a boolean the bastion accepts (${why}); use true or false`);
}

const PORT_RE = /^[0-9]+$/;

/**
 * PodPortForwardOptions.ports as the API server reads it: every value, each split on ",", each piece
 * a decimal port 1-65535 (ParseUint base 10, 16 bits; the kubelet refuses 0). Order kept, repeats kept.
 */
export function queryPorts(params: URLSearchParams, parameter = 'ports'): QueryValue<number[]> {
  const ports: number[] = [];
  for (const value of params.getAll(parameter)) {
    for (const piece of value.split(',')) {
      const port = PORT_RE.test(piece) ? Number(piece) : NaN;
      if (!(port >= 1 && port <= 65535)) {
        return refused(parameter, `${parameter}=${JSON.stringify(value)}: ${JSON.stringify(piece)} is not a port number (1-65535)`);
      }
      ports.push(port);
    }
  }
  return { ok: true, value: ports };
}
