import Foundation
import GRDB

/// A pipeline stage's run, as recorded in `stage_runs`.
public struct StageRun: Equatable, Sendable {
    public var fingerprint: String
    public var finished: Bool
}

extension CatalogDatabase {
    /// Records that a stage started; returns the row id to finish.
    public func stageStarted(pipeline: String, stage: String, fingerprint: String, arguments: [String]) throws -> Int64 {
        try writer.write { db in
            try db.execute(sql: "INSERT INTO stage_runs (pipeline, stage, fingerprint, arguments, started_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [pipeline, stage, fingerprint, arguments.joined(separator: " "), Date()])
            return db.lastInsertedRowID
        }
    }

    public func stageFinished(_ id: Int64) throws {
        try writer.write { db in try db.execute(sql: "UPDATE stage_runs SET finished_at = ? WHERE id = ?", arguments: [Date(), id]) }
    }

    /// The most recent run of a stage.
    public func lastStageRun(pipeline: String, stage: String) throws -> StageRun? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT fingerprint, finished_at FROM stage_runs WHERE pipeline = ? AND stage = ? ORDER BY id DESC LIMIT 1",
                             arguments: [pipeline, stage]).map { row in
                StageRun(fingerprint: row["fingerprint"], finished: !(row["finished_at"] as DatabaseValue).isNull)
            }
        }
    }
}
