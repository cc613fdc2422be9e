public enum Npy {}
