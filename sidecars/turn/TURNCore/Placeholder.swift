public enum TURNCorePlaceholder {}
