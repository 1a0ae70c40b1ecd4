//! Renders the causes catalogue for people and programs.
