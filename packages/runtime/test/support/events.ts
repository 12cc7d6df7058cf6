import type { Worker } from "../../src/Worker.js"
import type { WorkerEvent } from "../../src/WorkerEvent.js"

/** Records a worker's events, by type. */
export const recordEvents = (worker: { subscribe: Worker["subscribe"] }) => {
  const events: Array<WorkerEvent> = []
  worker.subscribe((event) => events.push(event))
  return {
    events,
    ofType: <T extends WorkerEvent["type"]>(type: T) =>
      events.filter((e): e is Extract<WorkerEvent, { type: T }> => e.type === type),
  }
}
