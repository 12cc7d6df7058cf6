import { describe, expect, it } from "vitest"
import { classifyDriverError, classifySqlState, explainConnectionFailure } from "../src/SqlState.js"

describe("classifySqlState", () => {
  it.each([
    ["08006", "connection"],
    ["ECONNREFUSED", "connection"],
    ["57P01", "admin-shutdown"],
    ["28P01", "authentication"],
    ["42501", "insufficient-privilege"],
    ["EPROTO", "tls"],
    [undefined, "other"],
  ] as const)("%s is %s", (code, cls) => {
    expect(classifySqlState(code)).toBe(cls)
  })
})

describe("classifyDriverError", () => {
  it("classifies driver errors without a SQLSTATE by their message", () => {
    expect(classifyDriverError(undefined, "Connection terminated unexpectedly")).toBe("connection")
    expect(
      classifyDriverError(undefined, "SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string"),
    ).toBe("authentication")
    expect(classifyDriverError(undefined, "The server does not support SSL connections")).toBe("tls")
    expect(classifyDriverError(undefined, "self-signed certificate in certificate chain")).toBe("tls")
    expect(classifyDriverError("42P01", 'relation "x" does not exist')).toBe("undefined-object")
  })
})

describe("explainConnectionFailure", () => {
  it("explains a URL without a password (SCRAM and cleartext servers)", () => {
    for (const message of [
      "SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string",
      "empty password returned by client",
    ]) {
      expect(explainConnectionFailure(message.startsWith("SASL") ? undefined : "28P01", message)).toContain(
        "the server asks for a password and the URL gives none",
      )
    }
  })

  it("explains TLS mismatches and refused credentials, and leaves other messages alone", () => {
    expect(explainConnectionFailure(undefined, "The server does not support SSL connections")).toContain(
      "use sslmode=disable",
    )
    expect(explainConnectionFailure(undefined, "self-signed certificate in certificate chain")).toContain(
      "verify-full also needs the server's CA in sslrootcert",
    )
    expect(explainConnectionFailure("28P01", 'password authentication failed for user "x"')).toContain(
      "the server refused the credentials",
    )
    expect(explainConnectionFailure("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1")).toBe(
      "connect ECONNREFUSED 127.0.0.1:1",
    )
  })
})
