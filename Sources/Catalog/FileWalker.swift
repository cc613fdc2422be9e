import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A regular file found under a root.
public struct WalkedFile: Sendable {
    /// Relative to the root, '/'-separated, for people: bytes that are not UTF-8 appear as `\xNN`.
    public var relativePath: String
    /// The exact relative path bytes (the catalogue's key: names need not be UTF-8).
    public var relativePathBytes: [UInt8]
    /// The exact bytes to open, NUL-terminated: names need not be UTF-8.
    public var absolutePath: [CChar]
    public var sizeBytes: Int64
    public var mtimeNs: Int64
    /// Set when the entry exists but could not be stat'ed (a dangling symlink, say).
    public var statError: String?
}

/// Walks a directory tree depth-first in byte order of names, yielding regular files only (a FIFO
/// or device is never opened). Symlinks are skipped unless followed; a followed link to a directory
/// already on the walk is a loop and is skipped, so the walk always ends. Holds one directory's
/// listing at a time, not the tree.
public struct FileWalker: Sequence, IteratorProtocol {
    public private(set) var warnings: [String] = []
    public private(set) var skippedSymlinks = 0

    private let followSymlinks: Bool
    private var pendingDirectories: [(absolute: [UInt8], relative: [UInt8])]
    private var pendingFiles: [WalkedFile] = []
    private var visited: Set<DirectoryIdentity> = []

    private struct DirectoryIdentity: Hashable { var device: UInt64; var inode: UInt64 }

    private let excluded: Set<[UInt8]>
    /// The last path components of `excluded`: only names among these need the full comparison.
    private let excludedNames: Set<[UInt8]>

    /// `excluding`: absolute paths never yielded (the catalogue's own database files).
    public init(root: String, followSymlinks: Bool, excluding: [String] = []) throws {
        var info = stat()
        guard stat(root, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { throw CatalogError.notADirectory(path: root) }
        self.followSymlinks = followSymlinks
        excluded = Set(excluding.map { Array($0.utf8) })
        excludedNames = Set(excluding.map { Array(($0 as NSString).lastPathComponent.utf8) })
        var rootBytes = Array(root.utf8)
        while rootBytes.count > 1 && rootBytes.last == UInt8(ascii: "/") { rootBytes.removeLast() }
        pendingDirectories = [(rootBytes, [])]
        visited.insert(DirectoryIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)))
        pendingFiles.reserveCapacity(1024)
    }

    public mutating func next() -> WalkedFile? {
        while pendingFiles.isEmpty {
            guard let directory = pendingDirectories.popLast() else { return nil }
            list(directory)
        }
        return pendingFiles.removeLast()
    }

    private mutating func list(_ directory: (absolute: [UInt8], relative: [UInt8])) {
        guard let handle = opendir(cString(directory.absolute)) else {
            warnings.append("\(display(directory.relative.isEmpty ? Array(".".utf8) : directory.relative)): cannot list directory: \(String(cString: strerror(errno)))")
            return
        }
        defer { closedir(handle) }
        var names: [[UInt8]] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix(while: { $0 != 0 })) }
            if name == [UInt8(ascii: ".")] || name == [UInt8(ascii: "."), UInt8(ascii: ".")] { continue }
            names.append(name)
        }
        names.sort { $0.lexicographicallyPrecedes($1) }
        // Entries are stat'ed relative to the open directory: no walk down the whole path per file.
        let directoryDescriptor = dirfd(handle)

        var files: [WalkedFile] = [], directories: [(absolute: [UInt8], relative: [UInt8])] = []
        for name in names {
            let absolute = directory.absolute + [UInt8(ascii: "/")] + name
            if excludedNames.contains(name) && excluded.contains(absolute) { continue }
            let relative = directory.relative.isEmpty ? name : directory.relative + [UInt8(ascii: "/")] + name
            var info = stat()
            guard fstatat(directoryDescriptor, cString(name), &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                files.append(entry(absolute, relative, info, error: "cannot stat: \(String(cString: strerror(errno)))"))
                continue
            }
            if (info.st_mode & S_IFMT) == S_IFLNK {
                guard followSymlinks else { skippedSymlinks += 1; continue }
                guard fstatat(directoryDescriptor, cString(name), &info, 0) == 0 else {
                    files.append(entry(absolute, relative, info, error: "dangling symbolic link: \(String(cString: strerror(errno)))"))
                    continue
                }
            }
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                files.append(entry(absolute, relative, info, error: nil))
            case S_IFDIR:
                let identity = DirectoryIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
                if visited.insert(identity).inserted {
                    directories.append((absolute, relative))
                } else {
                    warnings.append("\(display(relative)): directory already walked (symlink loop); skipped")
                }
            default:
                continue  // FIFOs, sockets, devices: never opened
            }
        }
        // Stacks pop from the end: reverse so files and subdirectories come out in name order.
        pendingFiles = files.reversed()
        pendingDirectories.append(contentsOf: directories.reversed())
    }

    private func entry(_ absolute: [UInt8], _ relative: [UInt8], _ info: stat, error: String?) -> WalkedFile {
        WalkedFile(relativePath: display(relative), relativePathBytes: relative, absolutePath: cString(absolute),
                   sizeBytes: error == nil ? Int64(info.st_size) : 0,
                   mtimeNs: error == nil ? Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec) : 0,
                   statError: error)
    }

    private func cString(_ bytes: [UInt8]) -> [CChar] { bytes.map { CChar(bitPattern: $0) } + [0] }
    private func display(_ bytes: [UInt8]) -> String { displayPath(bytes) }
}

/// A path for people and for CSV/JSON: valid UTF-8 as is; otherwise each byte that is not part of a
/// valid UTF-8 sequence written as `\xNN`, so distinct names stay distinct and readable.
public func displayPath(_ bytes: [UInt8]) -> String {
    if let text = String(validatingUTF8: bytes.map { CChar(bitPattern: $0) } + [0]) { return text }
    var result = ""
    var index = 0
    while index < bytes.count {
        // The longest valid UTF-8 sequence starting here (1 to 4 bytes), else one escaped byte.
        var decoded: String?
        for length in 1...4 where index + length <= bytes.count {
            if let text = String(bytes: bytes[index..<index + length], encoding: .utf8), text.unicodeScalars.count == 1 {
                decoded = text
                index += length
                break
            }
        }
        if let decoded {
            result += decoded
        } else {
            result += String(format: "\\x%02X", bytes[index])
            index += 1
        }
    }
    return result
}
